package oxdserver

import (
	"context"
	"errors"
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
