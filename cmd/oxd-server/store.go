package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdserver/redisstore"
)

// openStore opens the store named by spec: "memory", "file:<path>" or a
// redis:// / rediss:// URL (keys under redisPrefix). desc describes it for
// the log without any credential. Errors never quote a Redis password.
func openStore(ctx context.Context, spec, redisPrefix string) (store oxdserver.Store, desc string, err error) {
	switch {
	case spec == "" || spec == "memory":
		return oxdserver.NewMemoryStore(), "memory", nil
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if path == "" {
			return nil, "", errors.New("-store file:<path> needs a path")
		}
		fs, err := oxdserver.NewFileStore(path)
		if err != nil {
			return nil, "", fmt.Errorf("-store file: %w", err)
		}
		return fs, "file:" + path, nil
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://"):
		return openRedis(ctx, spec, redisPrefix)
	}
	return nil, "", fmt.Errorf("-store %q: want memory, file:<path> or redis://…", spec)
}

func openRedis(ctx context.Context, spec, prefix string) (oxdserver.Store, string, error) {
	u, err := url.Parse(spec)
	if err != nil {
		// url.Parse quotes the whole URL, password included.
		return nil, "", errors.New("-store: invalid Redis URL")
	}
	desc := redactURL(u)
	password, _ := u.User.Password()
	hide := func(err error) string {
		s := err.Error()
		if password != "" {
			s = strings.ReplaceAll(s, password, "xxxxx")
		}
		return s
	}
	opts, err := redis.ParseURL(spec)
	if err != nil {
		return nil, "", fmt.Errorf("-store %s: %s", desc, hide(err))
	}
	client := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		return nil, "", fmt.Errorf("-store %s: cannot reach Redis: %s", desc, hide(err))
	}
	return &redisStore{Store: redisstore.New(client, prefix), client: client},
		desc + " (prefix " + prefix + ")", nil
}

// redisStore closes its client with the store.
type redisStore struct {
	*redisstore.Store
	client *redis.Client
}

func (s *redisStore) Close() error {
	return errors.Join(s.Store.Close(), s.client.Close())
}

// redactURL drops the password of a URL for logs.
func redactURL(u *url.URL) string {
	c := *u
	if _, has := c.User.Password(); has {
		c.User = url.UserPassword(c.User.Username(), "xxxxx")
	}
	return c.String()
}
