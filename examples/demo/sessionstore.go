package main

import (
	"strconv"
	"sync"
	"time"
)

// sessionStore is the demo's in-memory scs store. Sessions live in
// generations: a new client registration (or its deletion) starts a new
// generation, which ends every session of the previous one at once, while
// an update of the same client keeps them. One goroutine removes expired
// sessions until Close.
type sessionStore struct {
	mu       sync.Mutex
	sessions map[string]storedSession
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

type storedSession struct {
	b      []byte
	expiry time.Time
}

func newSessionStore(cleanup time.Duration) *sessionStore {
	s := &sessionStore{sessions: map[string]storedSession{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(cleanup)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case now := <-t.C:
				s.mu.Lock()
				for k, v := range s.sessions {
					if !now.Before(v.expiry) {
						delete(s.sessions, k)
					}
				}
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// Close stops the cleanup goroutine and drops every session.
func (s *sessionStore) Close() {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		s.mu.Lock()
		clear(s.sessions)
		s.mu.Unlock()
	})
}

// generation returns an scs.Store whose tokens live in their own
// namespace.
func (s *sessionStore) generation(n uint64) *sessionGen {
	return &sessionGen{s: s, prefix: "g" + strconv.FormatUint(n, 10) + ":"}
}

// sessionGen is one generation of sessions (an scs.Store).
type sessionGen struct {
	s      *sessionStore
	prefix string
}

func (g *sessionGen) Find(token string) ([]byte, bool, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	v, ok := g.s.sessions[g.prefix+token]
	if !ok || !time.Now().Before(v.expiry) {
		return nil, false, nil
	}
	return v.b, true, nil
}

func (g *sessionGen) Commit(token string, b []byte, expiry time.Time) error {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	g.s.sessions[g.prefix+token] = storedSession{b: b, expiry: expiry}
	return nil
}

func (g *sessionGen) Delete(token string) error {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	delete(g.s.sessions, g.prefix+token)
	return nil
}
