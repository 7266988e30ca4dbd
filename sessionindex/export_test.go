package sessionindex

// Sizes exposes (*Memory).sizes to the external tests.
func Sizes(m *Memory) (entries, subjects, sids, jtis int) { return m.sizes() }
