// Package sessionindex is the in-memory session index of the oxd
// middleware and the entry type every index implementation shares (see
// oxd.SessionIndex for the contract).
//
// An index maps the store keys of scs sessions to the OP session (issuer,
// sid) and the subject (issuer, sub) they belong to, so that an OpenID
// Connect Back-Channel or Front-Channel logout, or "sign out of all my
// sessions", can end every one of them. It also holds the replay cache for
// logout token identifiers (jti).
//
// # Bounds
//
// Entries expire with their session (Entry.Expires). A subject has at most
// MaxPerSubject live entries (default [DefaultMaxPerSubject]); adding one
// more evicts the entry of that subject that expires first and returns its
// store key, which the caller must end, so that no live session is
// unreachable by logout. Fields are bounded ([MaxTokenLen], [MaxIssuerLen],
// [MaxValueLen]). The memory index also bounds the replay cache
// (MemoryOptions.MaxJTIs) and refuses marks beyond it (fail closed), and
// the ended-session marks (MemoryOptions.MaxEnded; beyond it the mark that
// expires first is dropped). Every mark expires on its own.
//
// [Memory] serves one process. Several replicas share the Redis index of
// package sessionindex/redisindex.
package sessionindex

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// DefaultMaxPerSubject is the default number of live sessions one subject
// may have in an index.
const DefaultMaxPerSubject = 64

// Field limits of an Entry (bytes) and of a jti.
const (
	// MaxTokenLen bounds Entry.Token (a scs token or its hash is 43 bytes).
	MaxTokenLen = 256
	// MaxIssuerLen bounds issuers.
	MaxIssuerLen = 2048
	// MaxValueLen bounds Entry.Subject, Entry.SID and jti values.
	MaxValueLen = 1024
)

// Errors.
var (
	// ErrInvalidEntry: an Entry or a lookup argument is empty, too long or
	// already expired.
	ErrInvalidEntry = errors.New("sessionindex: invalid entry")
	// ErrReplayCacheFull: the memory replay cache holds MaxJTIs live marks;
	// the mark is refused (so is the token).
	ErrReplayCacheFull = errors.New("sessionindex: replay cache full")
)

// Entry is one signed-in session.
type Entry struct {
	// Token is the session's store key: what the scs Store is addressed
	// with (the session token, or its hash when HashTokenInStore is set).
	Token string
	// Issuer is the OP's issuer identifier (the ID token's iss).
	Issuer string
	// Subject is the ID token's sub at Issuer. Required.
	Subject string
	// SID is the ID token's sid, the OP session; empty when the OP sent
	// none (the session is then reachable by subject only).
	SID string
	// Expires is the session's absolute expiry; the entry disappears then.
	Expires time.Time
}

// Validate reports whether e can be added at time now: every field but SID
// set and within its limit, Expires after now.
func (e Entry) Validate(now time.Time) error {
	switch {
	case e.Token == "" || len(e.Token) > MaxTokenLen:
		return fmt.Errorf("%w: token empty or longer than %d bytes", ErrInvalidEntry, MaxTokenLen)
	case e.Issuer == "" || len(e.Issuer) > MaxIssuerLen:
		return fmt.Errorf("%w: issuer empty or longer than %d bytes", ErrInvalidEntry, MaxIssuerLen)
	case e.Subject == "" || len(e.Subject) > MaxValueLen:
		return fmt.Errorf("%w: subject empty or longer than %d bytes", ErrInvalidEntry, MaxValueLen)
	case len(e.SID) > MaxValueLen:
		return fmt.Errorf("%w: sid longer than %d bytes", ErrInvalidEntry, MaxValueLen)
	case !e.Expires.After(now):
		return fmt.Errorf("%w: already expired", ErrInvalidEntry)
	}
	return nil
}

// CheckLookup validates the arguments of a lookup (BySID, BySubject) or of
// a jti mark: both non-empty and within their limits.
func CheckLookup(issuer, value string) error {
	if issuer == "" || len(issuer) > MaxIssuerLen || value == "" || len(value) > MaxValueLen {
		return fmt.Errorf("%w: issuer or value empty or too long", ErrInvalidEntry)
	}
	return nil
}

// PairKey encodes (issuer, value) injectively (length-prefixed), for use as
// a map or key name component.
func PairKey(issuer, value string) string {
	return strconv.Itoa(len(issuer)) + ":" + issuer + value
}
