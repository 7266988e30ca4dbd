package sessionindex_test

import (
	"context"
	"fmt"
	"time"

	"github.com/oxdgo/oxd/sessionindex"
)

// Example shows the life of an entry: login adds the session's store key
// with the ID token's iss, sub and sid; a back-channel logout for the OP
// session finds it by sid; the caller deletes the key from the scs Store
// and removes it from the index. At the per-subject cap, Add returns the
// store keys of the sessions it dropped, which the caller ends as well.
func Example() {
	ctx := context.Background()
	idx := sessionindex.NewMemory(sessionindex.MemoryOptions{MaxPerSubject: 2})
	const iss = "https://op.example.com"
	for i, key := range []string{"store-key-1", "store-key-2", "store-key-3"} {
		evicted, err := idx.Add(ctx, sessionindex.Entry{
			Token: key, Issuer: iss, Subject: "alice", SID: "op-session-a",
			Expires: time.Now().Add(time.Duration(i+1) * time.Hour),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, k := range evicted {
			fmt.Println("end session (over the cap):", k) // scs Store.Delete(k)
		}
	}
	keys, _ := idx.BySID(ctx, iss, "op-session-a")
	for _, k := range keys {
		fmt.Println("end session (logout):", k) // scs Store.Delete(k)
		_ = idx.Remove(ctx, k)
	}
	fresh, _ := idx.MarkJTI(ctx, iss, "jti-1", 5*time.Minute)
	replay, _ := idx.MarkJTI(ctx, iss, "jti-1", 5*time.Minute)
	fmt.Println("first jti fresh:", fresh, "replay fresh:", replay)
	// Output:
	// end session (over the cap): store-key-1
	// end session (logout): store-key-2
	// end session (logout): store-key-3
	// first jti fresh: true replay fresh: false
}
