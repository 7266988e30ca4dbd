package oxd

import (
	"context"
	"time"

	"github.com/oxdgo/oxd/sessionindex"
)

// SessionIndex records which scs sessions belong to which OP session (the
// ID token's sid) and subject, so that a logout can end every one of them:
// OpenID Connect Back-Channel and Front-Channel Logout, and "sign out of
// all my sessions". It also holds the replay cache for logout tokens.
//
// The index holds store keys, never bearer tokens the store itself does not
// hold: a store key is what the scs Store is addressed with, the session
// token, or its hash when SessionManager.HashTokenInStore is set. Ending a
// session is deleting its store key from the scs Store, so the next request
// with that cookie, on any replica, is anonymous.
//
// Two implementations come with the module: [sessionindex.NewMemory] (one
// process) and sessionindex/redisindex (shared by every replica, the usual
// choice: an index that only one replica knows ends sessions only on that
// replica's memory store). Both pass the contract of package
// sessionindex/indextest, which any other implementation should run too.
//
// Implementations must be safe for concurrent use and must bound what they
// keep:
//   - An entry disappears when its session expires (Entry.Expires), without
//     any call.
//   - A subject has at most a documented number of live entries (the
//     implementations' MaxPerSubject, default
//     [sessionindex.DefaultMaxPerSubject]). Adding one more evicts the
//     subject's entry that expires first (other than the one being added) and
//     returns its store key: the caller must then end that session, because
//     a session that is not in the index cannot be reached by a logout. The
//     cap is therefore a limit on concurrent sessions per subject, and the
//     guarantee "logout ends every session" holds at the cap too.
//   - A replay mark lasts its ttl; an ended-session mark (MarkEnded) lasts
//     until its until, and there is one per session ended, so the marks
//     are bounded by the sessions ended within a session lifetime.
type SessionIndex interface {
	// Add records a signed-in session. Adding a store key that is already
	// present replaces its entry. evicted are the store keys dropped to
	// keep the subject within its cap; the caller ends those sessions. An
	// error means nothing is known to be recorded: the caller must not let
	// the session live (a session outside the index cannot be logged out).
	Add(ctx context.Context, e sessionindex.Entry) (evicted []string, err error)

	// BySID returns the store keys of the live sessions of the OP session
	// sid at issuer (empty and no error when there are none).
	BySID(ctx context.Context, issuer, sid string) ([]string, error)

	// BySubject returns the store keys of the live sessions of subject at
	// issuer (empty and no error when there are none).
	BySubject(ctx context.Context, issuer, subject string) ([]string, error)

	// Remove forgets the store key (after its session has ended). Removing
	// an unknown key is not an error.
	Remove(ctx context.Context, storeKey string) error

	// MarkJTI records the logout token identifier jti of issuer for ttl and
	// reports whether it was fresh, atomically across every replica that
	// shares the index: of concurrent calls with one (issuer, jti) exactly
	// one sees fresh == true while the mark lasts. An error means the mark
	// is unknown, and the caller must refuse the token.
	MarkJTI(ctx context.Context, issuer, jti string, ttl time.Duration) (fresh bool, err error)

	// MarkEnded records that the session with store key storeKey has
	// ended, until until (the latest time it could still have lived; a
	// later mark of the same key may extend it, never shorten it). The
	// middleware marks a session before it deletes it from the scs Store,
	// so that a request that loaded the session earlier and commits it
	// afterwards cannot bring it back (see Ended). An until not after now
	// records nothing.
	MarkEnded(ctx context.Context, storeKey string, until time.Time) error

	// Ended reports whether storeKey was marked ended and the mark has
	// not expired, as seen by every replica that shares the index. The
	// middleware asks after every write of a session to the scs Store
	// and deletes a session that was ended meanwhile.
	Ended(ctx context.Context, storeKey string) (bool, error)
}

// The in-memory index implements SessionIndex.
var _ SessionIndex = (*sessionindex.Memory)(nil)
