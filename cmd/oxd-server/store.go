package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/oxdgo/oxd/oxdserver"
)

// errStoreUnavailable: the storage kind is recognised but this build of
// the engine has no implementation for it yet.
var errStoreUnavailable = errors.New("storage kind not available in this build")

// openStore opens the store named by spec: "memory", "file:<path>" or a
// redis:// / rediss:// URL. desc describes it for the log without any
// credential.
func openStore(_ context.Context, spec string) (store oxdserver.Store, desc string, err error) {
	switch {
	case spec == "" || spec == "memory":
		return oxdserver.NewMemoryStore(), "memory", nil
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if path == "" {
			return nil, "", errors.New("-store file:<path> needs a path")
		}
		return nil, "", fmt.Errorf("-store file:%s: %w", path, errStoreUnavailable)
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://"):
		u, err := url.Parse(spec)
		if err != nil {
			return nil, "", errors.New("-store: invalid Redis URL")
		}
		return nil, "", fmt.Errorf("-store %s: %w", redactURL(u), errStoreUnavailable)
	}
	return nil, "", fmt.Errorf("-store %q: want memory, file:<path> or redis://…", spec)
}

// redactURL drops the password of a URL for logs.
func redactURL(u *url.URL) string {
	c := *u
	if _, has := c.User.Password(); has {
		c.User = url.UserPassword(c.User.Username(), "xxxxx")
	}
	return c.String()
}
