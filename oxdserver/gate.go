package oxdserver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// errBusy: a gate's callers in flight and waiting are at their bounds.
var errBusy = errors.New("oxdserver: too many requests of this kind in progress")

// gate bounds a kind of work that callers without credentials can cause:
// at most inFlight at once, and at most maxWaiting callers waiting for a
// turn (beyond, errBusy at once).
type gate struct {
	slots      chan struct{}
	waiting    atomic.Int32
	maxWaiting int32
}

func newGate(inFlight, maxWaiting int) *gate {
	return &gate{slots: make(chan struct{}, inFlight), maxWaiting: int32(maxWaiting)}
}

// enter waits for a turn: errBusy when too many callers wait already,
// ctx's error when it ends first. Call leave once done.
func (g *gate) enter(ctx context.Context) (leave func(), err error) {
	leave = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return leave, nil
	default:
	}
	if g.waiting.Add(1) > g.maxWaiting {
		g.waiting.Add(-1)
		return nil, errBusy
	}
	defer g.waiting.Add(-1)
	select {
	case g.slots <- struct{}{}:
		return leave, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// shares bounds, per key, the callers holding or waiting for a gate's
// turn, so that the callers of one key cannot take all of it. The zero
// value is ready for use.
type shares struct {
	mu sync.Mutex
	n  map[string]int
}

// take counts one more caller of key unless most already are; ok false
// then. Call give once done.
func (s *shares) take(key string, most int) (give func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key] >= most {
		return nil, false
	}
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[key]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.n[key]--
		if s.n[key] <= 0 {
			delete(s.n, key)
		}
	}, true
}
