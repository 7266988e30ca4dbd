package umaclient_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdclient/umaclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// An API client calls a UMA-protected API, gets 401 with a UMA challenge,
// redeems the ticket for an RPT at the authorization server and retries
// with the RPT. Here the client has no oxd of its own: it asks the AS's
// token endpoint directly with its client credentials (with oxd, set
// Config.Oxd and Config.OxdID instead). The API and the AS are the
// development OP and the in-process engine on loopback.
func Example() {
	api, issuer, clientID, clientSecret, done := startPhotoAPI()
	defer done()
	ctx := context.Background()

	uc, err := umaclient.New(umaclient.Config{
		Issuers:      []string{issuer}, // the only AS this client trusts
		ClientID:     clientID,
		ClientSecret: clientSecret,
	})
	if err != nil {
		log.Fatal(err)
	}

	call := func(rpt oxdclient.Secret) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api+"/photos", nil)
		if !rpt.IsZero() {
			req.Header.Set("Authorization", "Bearer "+rpt.Reveal())
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		return res
	}

	res := call("")
	res.Body.Close()
	fmt.Println(res.StatusCode)
	if res.StatusCode == http.StatusUnauthorized {
		ch, err := umaclient.ParseChallenge(res.Header)
		if err != nil {
			log.Fatal(err)
		}
		rpt, err := uc.RPT(ctx, ch, umaclient.Options{})
		if err != nil {
			// errors.Is(err, umaclient.ErrNeedInfo): push claims or send
			// the user to the claims-gathering URL, then retry with the
			// new ticket (see Error.Challenge).
			log.Fatal(err)
		}
		res = call(rpt.AccessToken)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, string(body))
	// Output:
	// 401
	// 200 content of /photos
}

// startPhotoAPI starts the development OP, an engine with a site, and the
// photo API of newPhotoAPI on loopback. It returns the API's URL, the AS's
// issuer and a confidential client of the AS (the site's setup client).
func startPhotoAPI() (api, issuer, clientID string, secret oxdclient.Secret, done func()) {
	ctx := context.Background()
	op, err := oxdtest.StartOP(oxdtest.OPConfig{})
	if err != nil {
		log.Fatal(err)
	}
	engine, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true}) // the development OP serves plain http on loopback
	if err != nil {
		log.Fatal(err)
	}
	client := oxdclient.New(engine, oxdclient.Config{})
	site, err := client.SetupClient(ctx, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: op.Issuer(), AuthorizationRedirectURI: "https://api.example/callback", Scope: []string{"openid"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	h, err := newPhotoAPI(ctx, client, site.OxdID)
	if err != nil {
		log.Fatal(err)
	}
	s := httptest.NewServer(h)
	return s.URL, op.Issuer(), site.ClientID, site.ClientSecret, func() {
		s.Close()
		_ = engine.Close()
		op.Close()
	}
}
