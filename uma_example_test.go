package oxd_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// Protecting a route with UMA 2.0: declare the scopes next to the route,
// register the declared routes with oxd once at startup, and serve. A
// client without an RPT gets 401 with a UMA challenge; with an RPT for the
// resource it gets through. Here the OP and oxd are the development OP and
// the in-process engine; in production the client would talk to
// oxd-server (oxdclient.NewSocket).
func ExampleAuth_UMAProtect() {
	ctx := context.Background()
	op, err := oxdtest.StartOP(oxdtest.OPConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer op.Close()
	engine, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()
	client := oxdclient.New(engine, oxdclient.Config{})
	site, err := client.SetupClient(ctx, oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost:                   op.Issuer(),
		AuthorizationRedirectURI: "https://app.example/callback",
		PostLogoutRedirectURI:    "https://app.example/logged-out",
		Scope:                    []string{"openid", "profile"},
	}})
	if err != nil {
		log.Fatal(err)
	}

	auth, err := oxd.New(client, scs.New(), oxd.Config{
		OxdID:                 site.OxdID,
		PostLogoutRedirectURI: "https://app.example/logged-out",
		UMA:                   oxd.UMAConfig{Realm: "photos"},
	})
	if err != nil {
		log.Fatal(err)
	}

	photo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "photo %s", r.PathValue("id"))
	})
	mux := http.NewServeMux()
	// The pattern names the route for UMA as for the mux: every concrete
	// path of /photos/{id} is one UMA resource.
	mux.Handle("GET /photos/{id}", auth.UMAProtect("GET /photos/{id}", "photos:view")(photo))
	if err := auth.RegisterUMA(ctx); err != nil {
		log.Fatal(err)
	}

	// A UMA client without an RPT: 401 and a permission ticket.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/photos/1", nil))
	challenge := rec.Header().Get("WWW-Authenticate")
	scheme, _, _ := strings.Cut(challenge, " ")
	fmt.Println(rec.Code, scheme, strings.Contains(challenge, `as_uri="`+op.Issuer()+`"`))

	// The client redeems the ticket at the AS for an RPT (here through
	// oxd) and presents it.
	_, ticket, _ := strings.Cut(challenge, `ticket="`)
	ticket = strings.TrimSuffix(ticket, `"`)
	rpt, err := client.UMARPGetRPT(ctx, oxdclient.UMARPGetRPTParams{OxdID: site.OxdID, Ticket: ticket})
	if err != nil {
		log.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/photos/2", nil)
	req.Header.Set("Authorization", "Bearer "+rpt.AccessToken.Reveal())
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 401 UMA true
	// 200 photo 2
}

// Browser RP mode and a page that shows what happened: a logged-in user's
// navigation gets an RPT (through claims gathering when the AS needs more
// information), kept in the user's session; the page reads the decision
// with UMAResult. Mount ClaimsCallbackHandler at the claims redirect URI
// registered for the site.
func ExampleUMAResult() {
	var client *oxdclient.Client // from oxdclient.New
	auth, err := oxd.New(client, scs.New(), oxd.Config{
		OxdID:                 "…",
		PostLogoutRedirectURI: "https://app.example/logged-out",
		UMA: oxd.UMAConfig{
			Browser:           true,
			ClaimsRedirectURL: "https://app.example/uma/claims",
			PushIDToken:       true,
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := oxd.UMAResult(r)
		if d.NewRPT {
			fmt.Fprintf(w, "401 challenge: %s\n", d.Challenge)
		}
		fmt.Fprintln(w, "access granted")
	})
	mux := http.NewServeMux()
	mux.Handle("GET /uma/reports/{id}", auth.RequireLogin(auth.UMAProtect("GET /uma/reports/{id}", "reports:read")(page)))
	mux.Handle("GET /uma/claims", auth.ClaimsCallbackHandler())
	if err := auth.RegisterUMA(context.Background()); err != nil {
		log.Fatal(err)
	}
}
