package sessionindex

// Sizes exposes (*Memory).sizes to the external tests.
func Sizes(m *Memory) (entries, subjects, sids, jtis int) { return m.sizes() }

// EndedMarks exposes (*Memory).endedMarks to the external tests.
func EndedMarks(m *Memory) int { return m.endedMarks() }
