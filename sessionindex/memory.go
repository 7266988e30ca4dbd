package sessionindex

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultMaxJTIs is the default capacity of the memory replay cache.
const DefaultMaxJTIs = 100_000

// DefaultMaxEnded is the default number of ended-session marks the memory
// index keeps.
const DefaultMaxEnded = 100_000

// MemoryOptions configures [NewMemory]. The zero value gives the defaults.
type MemoryOptions struct {
	// MaxPerSubject is the most live sessions one subject may have; adding
	// one more evicts the subject's entry that expires first. Default
	// DefaultMaxPerSubject.
	MaxPerSubject int
	// MaxJTIs is the most live logout-token marks; MarkJTI beyond it fails
	// with ErrReplayCacheFull (the token is refused rather than accepted
	// without replay protection). Default DefaultMaxJTIs.
	MaxJTIs int
	// MaxEnded is the most live ended-session marks (MarkEnded); beyond
	// it the mark that expires first is dropped. Default DefaultMaxEnded.
	MaxEnded int
}

// Memory is a session index held in this process's memory. It suits a
// single replica (with any scs store) and tests; replicas that share
// sessions need a shared index (sessionindex/redisindex). Safe for
// concurrent use. It starts no goroutine: expired entries are dropped by
// the next call that touches the index.
//
// Memory bound: at most MaxPerSubject entries per subject, each with its
// fields bounded (Entry.Validate), plus at most MaxJTIs replay marks and
// MaxEnded ended-session marks.
type Memory struct {
	maxPerSubject int
	maxJTIs       int
	maxEnded      int

	mu        sync.Mutex
	byToken   map[string]*memEntry
	bySubject map[string]map[string]*memEntry
	bySID     map[string]map[string]*memEntry
	expiry    expHeap[*memEntry]
	jtis      map[string]*jtiMark
	jtiExpiry expHeap[*jtiMark]
	ended     map[string]*jtiMark
	endExpiry expHeap[*jtiMark]
}

type memEntry struct {
	token   string
	subject string // PairKey(issuer, subject)
	sid     string // PairKey(issuer, sid) or ""
	expires time.Time
	idx     int
}

type jtiMark struct {
	key     string
	expires time.Time
	idx     int
}

func (e *memEntry) at() time.Time { return e.expires }
func (e *memEntry) setIdx(i int)  { e.idx = i }
func (j *jtiMark) at() time.Time  { return j.expires }
func (j *jtiMark) setIdx(i int)   { j.idx = i }

// now is the clock; time.Now, as the entries' expiries are wall-clock times.
func (m *Memory) now() time.Time { return time.Now() }

// sizes drops what has expired and reports the number of entries,
// subjects, OP sessions and replay marks held (for the bounds tests).
func (m *Memory) sizes() (entries, subjects, sids, jtis int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(m.now())
	return len(m.byToken), len(m.bySubject), len(m.bySID), len(m.jtis)
}

// endedMarks drops what has expired and reports the number of
// ended-session marks held.
func (m *Memory) endedMarks() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(m.now())
	return len(m.ended)
}

func positive(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// NewMemory returns an empty in-memory index.
func NewMemory(opts MemoryOptions) *Memory {
	return &Memory{
		maxPerSubject: positive(opts.MaxPerSubject, DefaultMaxPerSubject),
		maxJTIs:       positive(opts.MaxJTIs, DefaultMaxJTIs),
		maxEnded:      positive(opts.MaxEnded, DefaultMaxEnded),
		byToken:       make(map[string]*memEntry),
		bySubject:     make(map[string]map[string]*memEntry),
		bySID:         make(map[string]map[string]*memEntry),
		jtis:          make(map[string]*jtiMark),
		ended:         make(map[string]*jtiMark),
	}
}

// prune drops every expired entry and mark. Called with mu held.
func (m *Memory) prune(now time.Time) {
	for len(m.expiry) > 0 && !m.expiry[0].expires.After(now) {
		m.drop(m.expiry[0])
	}
	for len(m.jtiExpiry) > 0 && !m.jtiExpiry[0].expires.After(now) {
		j := heap.Pop(&m.jtiExpiry).(*jtiMark)
		delete(m.jtis, j.key)
	}
	for len(m.endExpiry) > 0 && !m.endExpiry[0].expires.After(now) {
		j := heap.Pop(&m.endExpiry).(*jtiMark)
		delete(m.ended, j.key)
	}
}

// drop removes e from every map and the heap. Called with mu held.
func (m *Memory) drop(e *memEntry) {
	heap.Remove(&m.expiry, e.idx)
	delete(m.byToken, e.token)
	removeFrom(m.bySubject, e.subject, e.token)
	if e.sid != "" {
		removeFrom(m.bySID, e.sid, e.token)
	}
}

func removeFrom(sets map[string]map[string]*memEntry, key, token string) {
	s := sets[key]
	delete(s, token)
	if len(s) == 0 {
		delete(sets, key)
	}
}

func addTo(sets map[string]map[string]*memEntry, key string, e *memEntry) {
	s := sets[key]
	if s == nil {
		s = make(map[string]*memEntry)
		sets[key] = s
	}
	s[e.token] = e
}

// Add implements oxd.SessionIndex.
func (m *Memory) Add(ctx context.Context, e Entry) (evicted []string, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	if err := e.Validate(now); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	if old := m.byToken[e.Token]; old != nil {
		m.drop(old)
	}
	me := &memEntry{token: e.Token, subject: PairKey(e.Issuer, e.Subject), expires: e.Expires}
	if e.SID != "" {
		me.sid = PairKey(e.Issuer, e.SID)
	}
	m.byToken[me.token] = me
	heap.Push(&m.expiry, me)
	addTo(m.bySubject, me.subject, me)
	if me.sid != "" {
		addTo(m.bySID, me.sid, me)
	}
	for set := m.bySubject[me.subject]; len(set) > m.maxPerSubject; {
		var first *memEntry
		for _, c := range set {
			if c != me && (first == nil || c.expires.Before(first.expires) || (c.expires.Equal(first.expires) && c.token < first.token)) {
				first = c
			}
		}
		m.drop(first)
		evicted = append(evicted, first.token)
	}
	return evicted, nil
}

func (m *Memory) lookup(ctx context.Context, sets map[string]map[string]*memEntry, issuer, value string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := CheckLookup(issuer, value); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	set := sets[PairKey(issuer, value)]
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}

// BySID implements oxd.SessionIndex.
func (m *Memory) BySID(ctx context.Context, issuer, sid string) ([]string, error) {
	return m.lookup(ctx, m.bySID, issuer, sid)
}

// BySubject implements oxd.SessionIndex.
func (m *Memory) BySubject(ctx context.Context, issuer, subject string) ([]string, error) {
	return m.lookup(ctx, m.bySubject, issuer, subject)
}

// Remove implements oxd.SessionIndex.
func (m *Memory) Remove(ctx context.Context, storeKey string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	if e := m.byToken[storeKey]; e != nil {
		m.drop(e)
	}
	return nil
}

// MarkJTI implements oxd.SessionIndex.
func (m *Memory) MarkJTI(ctx context.Context, issuer, jti string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := CheckLookup(issuer, jti); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, fmt.Errorf("%w: jti ttl %v is not positive", ErrInvalidEntry, ttl)
	}
	now := m.now()
	key := PairKey(issuer, jti)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	if _, seen := m.jtis[key]; seen {
		return false, nil
	}
	if len(m.jtis) >= m.maxJTIs {
		return false, fmt.Errorf("%w (%d marks)", ErrReplayCacheFull, m.maxJTIs)
	}
	j := &jtiMark{key: key, expires: now.Add(ttl)}
	m.jtis[key] = j
	heap.Push(&m.jtiExpiry, j)
	return true, nil
}

// MarkEnded implements oxd.SessionIndex. At MaxEnded live marks the one
// that expires first is dropped to make room.
func (m *Memory) MarkEnded(ctx context.Context, storeKey string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if storeKey == "" || len(storeKey) > MaxTokenLen {
		return fmt.Errorf("%w: store key empty or longer than %d bytes", ErrInvalidEntry, MaxTokenLen)
	}
	now := m.now()
	if !until.After(now) {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	if j := m.ended[storeKey]; j != nil {
		if until.After(j.expires) {
			j.expires = until
			heap.Fix(&m.endExpiry, j.idx)
		}
		return nil
	}
	for len(m.ended) >= m.maxEnded {
		j := heap.Pop(&m.endExpiry).(*jtiMark)
		delete(m.ended, j.key)
	}
	j := &jtiMark{key: storeKey, expires: until}
	m.ended[storeKey] = j
	heap.Push(&m.endExpiry, j)
	return nil
}

// Ended implements oxd.SessionIndex.
func (m *Memory) Ended(ctx context.Context, storeKey string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	j := m.ended[storeKey]
	return j != nil && j.expires.After(now), nil
}

// expHeap is a min-heap by expiry.
type expHeap[T interface {
	at() time.Time
	setIdx(int)
}] []T

func (h expHeap[T]) Len() int           { return len(h) }
func (h expHeap[T]) Less(i, j int) bool { return h[i].at().Before(h[j].at()) }
func (h expHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].setIdx(i)
	h[j].setIdx(j)
}
func (h *expHeap[T]) Push(x any) {
	v := x.(T)
	v.setIdx(len(*h))
	*h = append(*h, v)
}
func (h *expHeap[T]) Pop() any {
	old := *h
	v := old[len(old)-1]
	var zero T
	old[len(old)-1] = zero
	*h = old[:len(old)-1]
	return v
}
