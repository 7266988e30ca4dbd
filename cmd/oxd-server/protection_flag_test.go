package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

// TestNoProtectionWarningFollowsEffectiveSetting: the warning that
// protection is off, and the listeners' protection attribute, follow what
// the engine does with the parsed flags, not how the flag is spelled:
// every spelling that switches protection off warns, and the socket
// listener then lists the sites without a token; a spelling that leaves
// it on (=false, =0, a later =false) does not warn, and the listener
// refuses get_rp without a token.
func TestNoProtectionWarningFollowsEffectiveSetting(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		off   bool
	}{
		{nil, false},
		{[]string{"-insecure-no-protection"}, true},
		{[]string{"--insecure-no-protection"}, true},
		{[]string{"-insecure-no-protection=true"}, true},
		{[]string{"--insecure-no-protection=1"}, true},
		{[]string{"-insecure-no-protection=TRUE"}, true},
		{[]string{"-insecure-no-protection=false"}, false},
		{[]string{"--insecure-no-protection=false"}, false},
		{[]string{"-insecure-no-protection=0"}, false},
		{[]string{"-insecure-no-protection", "-insecure-no-protection=false"}, false},
		{[]string{"-insecure-no-protection=false", "-insecure-no-protection"}, true},
	} {
		t.Run(strings.Join(append([]string{"flags"}, tc.flags...), " "), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var logs lockedBuffer
			done := make(chan int, 1)
			exited := make(chan struct{})
			args := append([]string{"-listen", "127.0.0.1:0", "-https-listen", ""}, tc.flags...)
			go func() {
				done <- run(ctx, args, &logs)
				close(exited)
			}()
			m := logs.waitFor(t, regexp.MustCompile(`msg="oxd socket protocol listening" addr=(\S+) protection=(\w+)`), exited)
			if want := map[bool]string{true: "false", false: "true"}[tc.off]; m[2] != want {
				t.Errorf("listener logged protection=%s, want %s", m[2], want)
			}
			tr, err := oxdclient.NewSocket(m[1], oxdclient.SocketConfig{Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = oxdclient.New(tr, oxdclient.Config{}).GetRP(ctx, oxdclient.GetRPParams{List: true})
			_ = tr.Close()
			if served := err == nil; served != tc.off {
				t.Errorf("get_rp without a protection token: err %v, protection off %v", err, tc.off)
			}
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("exit %d:\n%s", code, logs.String())
			}
			warned := strings.Contains(logs.String(), `level=WARN msg="protection access tokens are OFF`)
			if warned != tc.off {
				t.Errorf("warned %v, protection off %v:\n%s", warned, tc.off, logs.String())
			}
		})
	}
}
