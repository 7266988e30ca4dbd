package oxdserver

import (
	"container/list"
	"sync"
	"time"
)

// ttlCache is a bounded map whose entries expire: when a put finds it
// full, the least recently used entries are evicted; an expired entry is
// dropped when met (an entry put with a zero until never expires). Safe
// for concurrent use; the zero value is empty.
type ttlCache[K comparable, V any] struct {
	mu   sync.Mutex
	m    map[K]*list.Element
	lru  list.List // of *ttlEntry[K, V], most recently used at the front
	cost int64     // the sum of the entries' costs (putCost)
}

type ttlEntry[K comparable, V any] struct {
	key   K
	val   V
	until time.Time
	cost  int64
}

// get returns the value under key if it is valid at now.
func (c *ttlCache[K, V]) get(key K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.m[key]
	if el == nil {
		var zero V
		return zero, false
	}
	e := el.Value.(*ttlEntry[K, V])
	if !e.until.IsZero() && !now.Before(e.until) {
		c.removeLocked(el)
		var zero V
		return zero, false
	}
	c.lru.MoveToFront(el)
	return e.val, true
}

// put stores v under key until until, then evicts the least recently used
// entries beyond size.
func (c *ttlCache[K, V]) put(key K, v V, until time.Time, size int) {
	c.putCost(key, v, until, size, 0, 0)
}

// putCost is put for an entry that costs cost (its size in bytes, say):
// the least recently used entries are also evicted while the costs add up
// to more than maxCost (0: no bound), the new entry excepted.
func (c *ttlCache[K, V]) putCost(key K, v V, until time.Time, size int, cost, maxCost int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[K]*list.Element{}
	}
	if old := c.m[key]; old != nil {
		c.removeLocked(old)
	}
	c.m[key] = c.lru.PushFront(&ttlEntry[K, V]{key: key, val: v, until: until, cost: cost})
	c.cost += cost
	for len(c.m) > size || (maxCost > 0 && c.cost > maxCost && len(c.m) > 1) {
		c.removeLocked(c.lru.Back())
	}
}

// delete drops the entry under key, if any.
func (c *ttlCache[K, V]) delete(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.m[key]; el != nil {
		c.removeLocked(el)
	}
}

// deleteFunc drops the entries for which drop is true.
func (c *ttlCache[K, V]) deleteFunc(drop func(K, V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*ttlEntry[K, V]); drop(e.key, e.val) {
			c.removeLocked(el)
		}
		el = next
	}
}

// len is the number of entries, expired ones not yet met included.
func (c *ttlCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// removeLocked drops el; c.mu is held.
func (c *ttlCache[K, V]) removeLocked(el *list.Element) {
	c.lru.Remove(el)
	e := el.Value.(*ttlEntry[K, V])
	c.cost -= e.cost
	delete(c.m, e.key)
}
