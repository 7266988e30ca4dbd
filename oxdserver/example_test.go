package oxdserver_test

import (
	"context"
	"fmt"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// ExampleEngine uses the engine in process as the transport of an oxd client,
// against the development OP: register a site, log alice in, read her
// claims.
func ExampleEngine() {
	op, err := oxdtest.StartOP(oxdtest.OPConfig{})
	if err != nil {
		panic(err)
	}
	defer op.Close()

	engine, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true}) // in-memory store
	if err != nil {
		panic(err)
	}
	defer engine.Close()
	client := oxdclient.New(engine, oxdclient.Config{})
	ctx := context.Background()

	site, err := client.RegisterSite(ctx, oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost:                   op.Issuer(),
		AuthorizationRedirectURI: "https://app.example.test/callback",
		Scope:                    []string{"openid", "profile", "email"},
	}})
	if err != nil {
		panic(err)
	}
	au, err := client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: site.OxdID})
	if err != nil {
		panic(err)
	}
	// A browser would follow au.AuthorizationURL; the development OP can
	// sign in for us and hand back the redirect to the callback.
	callback, err := op.Login(ctx, au.AuthorizationURL, "alice", "alice-password")
	if err != nil {
		panic(err)
	}
	tokens, err := client.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{
		OxdID: site.OxdID,
		Code:  oxdclient.Secret(callback.Query().Get("code")),
		State: callback.Query().Get("state"),
	})
	if err != nil {
		panic(err)
	}
	info, err := client.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: site.OxdID, AccessToken: tokens.AccessToken})
	if err != nil {
		panic(err)
	}
	fmt.Println(tokens.IDTokenClaims.String("sub"), info.Claims.String("email"))
	// Output: alice alice@example.test
}
