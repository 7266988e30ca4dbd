module github.com/oxdgo/oxd/examples

go 1.26.0

require (
	github.com/alexedwards/scs/v2 v2.9.0
	github.com/oxdgo/oxd v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

// The repository's own modules come from the workspace (go.work); the
// replaces keep GOWORK=off builds working.
replace github.com/oxdgo/oxd => ../
