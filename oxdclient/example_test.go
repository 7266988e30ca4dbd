package oxdclient_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"

	"github.com/oxdgo/oxd/oxdclient"
)

// fakeOxdServer answers every framed command on 127.0.0.1 with the same
// envelope, as oxd-server 3.1.x would (4-digit length prefix + JSON). It
// stands in for a real oxd-server in the example.
func fakeOxdServer(answer string) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		for {
			var prefix [4]byte
			if _, err := io.ReadFull(br, prefix[:]); err != nil {
				return
			}
			n, _ := strconv.Atoi(string(prefix[:]))
			if _, err := io.ReadFull(br, make([]byte, n)); err != nil {
				return
			}
			fmt.Fprintf(conn, "%04d%s", len(answer), answer)
		}
	}()
	return ln.Addr().String(), func() { ln.Close(); <-done }
}

// A client for oxd-server 3.1.x over its socket (default port 8099). The
// Socket keeps a small pool of persistent connections; close it when done.
func ExampleNewSocket() {
	addr, stop := fakeOxdServer(`{"status":"ok","data":{"authorization_url":"https://op.example/authorize?response_type=code&state=s1"}}`)
	defer stop()

	socket, err := oxdclient.NewSocket(addr, oxdclient.SocketConfig{PoolSize: 4})
	if err != nil {
		log.Fatal(err)
	}
	client := oxdclient.New(socket, oxdclient.Config{})
	defer client.Close()

	r, err := client.GetAuthorizationURL(context.Background(), oxdclient.GetAuthorizationURLParams{
		OxdID: "bcad760f-91ba-46e1-a020-05e4281d91b6",
		Scope: []string{"openid", "profile", "email"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.AuthorizationURL)
	// Output: https://op.example/authorize?response_type=code&state=s1
}

// A client for the oxd-https-extension. TLS certificates are verified: to
// trust the extension's own certificate, pass an *http.Client whose
// transport has it in its RootCAs (here the test server's client does).
// With protection credentials, the client obtains protection access tokens
// (get_client_token with the setup client) and sends them as
// "Authorization: Bearer".
func ExampleNewHTTPS() {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/get-client-token":
			io.WriteString(w, `{"status":"ok","data":{"access_token":"pat","expires_in":299,"refresh_token":null,"scope":"openid oxd"}}`)
		case "/get-logout-uri":
			if r.Header.Get("Authorization") != "Bearer pat" {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			io.WriteString(w, `{"status":"ok","data":{"uri":"https://op.example/end_session?state=x"}}`)
		}
	}))
	defer srv.Close()

	https, err := oxdclient.NewHTTPS(srv.URL, oxdclient.HTTPSConfig{HTTPClient: srv.Client()})
	if err != nil {
		log.Fatal(err)
	}
	client := oxdclient.New(https, oxdclient.Config{
		Protection: &oxdclient.ProtectionCredentials{
			ClientID:     "setup-client-id", // from setup_client
			ClientSecret: "setup-client-secret",
			OPHost:       "https://op.example",
		},
	})
	defer client.Close()

	r, err := client.GetLogoutURI(context.Background(), oxdclient.GetLogoutURIParams{OxdID: "bcad760f-91ba-46e1-a020-05e4281d91b6", State: "x"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.URI)
	// Output: https://op.example/end_session?state=x
}

// The one-time setup of an application: the first start runs setup_client
// and keeps the answer in a file (mode 0600); later starts read it. Either
// way EnsureSite installs the site's protection credentials on the client,
// so that an oxd that enforces protection tokens accepts the commands that
// follow, from the first run on.
func ExampleEnsureSite() {
	addr, stop := fakeOxdServer(`{"status":"ok","data":{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6","op_host":"https://op.example","client_id":"setup-client-id","client_secret":"setup-client-secret"}}`)
	defer stop()
	socket, err := oxdclient.NewSocket(addr, oxdclient.SocketConfig{})
	if err != nil {
		log.Fatal(err)
	}
	client := oxdclient.New(socket, oxdclient.Config{})
	defer client.Close()

	dir, _ := os.MkdirTemp("", "site")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "oxd-site.json")

	site, err := oxdclient.EnsureSite(context.Background(), client, path, oxdclient.SetupClientParams{
		SiteParams: oxdclient.SiteParams{
			OPHost:                   "https://op.example",
			AuthorizationRedirectURI: "https://app.example/callback",
			Scope:                    []string{"openid", "profile", "email"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(site.OxdID)
	fmt.Println(site.ClientSecret) // secrets print redacted
	// Output:
	// bcad760f-91ba-46e1-a020-05e4281d91b6
	// [REDACTED]
}
