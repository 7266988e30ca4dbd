package oxdserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oxdgo/oxd/internal/atomicfile"
)

// FileStore keeps sites in a JSON file, so they survive restarts. The file
// is rewritten atomically (a temporary file in the same directory, synced,
// then renamed) with mode 0600 on every change.
//
// One-time values (login states with their nonce and PKCE verifier,
// claims-gathering states) are kept in memory only: a restart in
// the middle of a login makes that user start the login again, which is
// the safe outcome. Use redisstore.Store (package oxdserver/redisstore) when several processes must share
// states.
//
// The file holds client secrets and registration access tokens in plain
// form: keep it on a private disk. A FileStore assumes it is the only
// writer of its file (one process).
type FileStore struct {
	path string
	mem  *MemoryStore // values

	mu    sync.Mutex
	sites map[string]json.RawMessage
}

type fileDoc struct {
	Version int                        `json:"version"`
	Sites   map[string]json.RawMessage `json:"sites"`
}

// NewFileStore opens (or, when missing, starts) the store at path. It
// first removes the temporary copies an interrupted write left behind
// (".<name>.<digits>.tmp" next to path; they hold client secrets).
func NewFileStore(path string) (*FileStore, error) {
	if path == "" {
		return nil, errors.New("oxdserver: file store needs a path")
	}
	f := &FileStore{path: path, mem: NewMemoryStore(), sites: map[string]json.RawMessage{}}
	if err := removeStaleTemps(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return f, nil
	case err != nil:
		return nil, fmt.Errorf("oxdserver: read file store: %w", err)
	}
	var doc fileDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("oxdserver: file store %s is not valid JSON: %w", filepath.Base(path), err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("oxdserver: file store %s has unknown version %d", filepath.Base(path), doc.Version)
	}
	for id, raw := range doc.Sites {
		var s Site
		if err := json.Unmarshal(raw, &s); err != nil || s.OxdID != id {
			return nil, fmt.Errorf("oxdserver: file store %s has a corrupt site entry", filepath.Base(path))
		}
		f.sites[id] = raw
	}
	return f, nil
}

// removeStaleTemps deletes the temporary copies that an interrupted write
// of the store (a crash, kill -9) left next to path: regular files named
// ".<base>.<digits>.tmp" in the same directory, as written before the
// rename. They hold client secrets. Nothing else is touched.
func removeStaleTemps(path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("oxdserver: read the file store's directory: %w", err)
	}
	prefix := "." + base + "."
	for _, e := range entries {
		name := e.Name()
		mid, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		mid, ok = strings.CutSuffix(mid, ".tmp")
		if !ok || mid == "" || strings.Trim(mid, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("oxdserver: remove a stale temporary file of the file store: %w", err)
		}
	}
	return nil
}

// persistLocked writes all sites; f.mu is held.
func (f *FileStore) persistLocked(sites map[string]json.RawMessage) error {
	b, err := json.MarshalIndent(fileDoc{Version: 1, Sites: sites}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(f.path, b); err != nil {
		return fmt.Errorf("oxdserver: write file store: %w", err)
	}
	return nil
}

// GetSite implements Store.
func (f *FileStore) GetSite(_ context.Context, oxdID string) (*Site, error) {
	f.mu.Lock()
	raw, ok := f.sites[oxdID]
	f.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	var s Site
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("oxdserver: stored site is corrupt: %w", err)
	}
	return &s, nil
}

// PutSite implements Store.
func (f *FileStore) PutSite(_ context.Context, site *Site) error {
	if site == nil || site.OxdID == "" {
		return errors.New("oxdserver: site without oxd_id")
	}
	raw, err := json.Marshal(site)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	next := make(map[string]json.RawMessage, len(f.sites)+1)
	for k, v := range f.sites {
		next[k] = v
	}
	next[site.OxdID] = raw
	if err := f.persistLocked(next); err != nil {
		return err
	}
	f.sites = next
	return nil
}

// DeleteSite implements Store.
func (f *FileStore) DeleteSite(_ context.Context, oxdID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sites[oxdID]; !ok {
		return ErrNotFound
	}
	next := make(map[string]json.RawMessage, len(f.sites))
	for k, v := range f.sites {
		if k != oxdID {
			next[k] = v
		}
	}
	if err := f.persistLocked(next); err != nil {
		return err
	}
	f.sites = next
	return nil
}

// ListSites implements Store.
func (f *FileStore) ListSites(_ context.Context) ([]*Site, error) {
	f.mu.Lock()
	ids := make([]string, 0, len(f.sites))
	raws := make(map[string]json.RawMessage, len(f.sites))
	for k, v := range f.sites {
		ids = append(ids, k)
		raws[k] = v
	}
	f.mu.Unlock()
	slices.Sort(ids)
	out := make([]*Site, 0, len(ids))
	for _, id := range ids {
		var s Site
		if err := json.Unmarshal(raws[id], &s); err != nil {
			return nil, fmt.Errorf("oxdserver: stored site is corrupt: %w", err)
		}
		out = append(out, &s)
	}
	return out, nil
}

// SetValueLimits bounds the pending one-time values, kept in memory (see
// MemoryStore.MaxValues); zero keeps a default. Call it before first use.
func (f *FileStore) SetValueLimits(maxValues, maxPerGroup int) {
	f.mem.MaxValues, f.mem.MaxValuesPerGroup = maxValues, maxPerGroup
}

// PutValue implements Store (in memory).
func (f *FileStore) PutValue(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return f.mem.PutValue(ctx, key, value, ttl)
}

// TakeValue implements Store (in memory).
func (f *FileStore) TakeValue(ctx context.Context, key string) ([]byte, error) {
	return f.mem.TakeValue(ctx, key)
}

// Close implements Store.
func (f *FileStore) Close() error { return nil }

// CountSites implements StoreCounter.
func (f *FileStore) CountSites(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.sites)), nil
}

// CountValues implements StoreCounter.
func (f *FileStore) CountValues(ctx context.Context) (int64, error) { return f.mem.CountValues(ctx) }
