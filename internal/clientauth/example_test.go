package clientauth_test

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/oxdgo/oxd/internal/clientauth"
)

// A token request authenticated with private_key_jwt: Apply adds the
// client assertion to the form; the caller encodes the form as the body.
func ExampleApply() {
	keys, err := clientauth.GenerateKeySet("ES256", time.Now())
	if err != nil {
		panic(err)
	}
	creds := clientauth.Credentials{
		ClientID:      "my-client",
		Method:        clientauth.MethodPrivateKeyJWT,
		Keys:          keys,
		TokenEndpoint: "https://op.example.com/token",
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	h := http.Header{}
	if err := clientauth.Apply(h, form, "https://op.example.com/token", creds); err != nil {
		panic(err)
	}
	fmt.Println(form.Get("client_assertion_type"))
	fmt.Println(form.Get("client_assertion") != "", h.Get("Authorization") == "")
	// Output:
	// urn:ietf:params:oauth:client-assertion-type:jwt-bearer
	// true true
}

// Choosing the method for a dynamic registration from the OP's discovery
// document, and what a pre-registered client without a secret is told.
func ExampleChooseMethod() {
	m, _ := clientauth.ChooseMethod([]string{"client_secret_post", "client_secret_basic", "private_key_jwt"})
	fmt.Println(m)
	m, _ = clientauth.ChooseMethod(nil) // the OP does not say: the OAuth default
	fmt.Println(m)
	err := clientauth.Credentials{ClientID: "pre-registered"}.Validate()
	fmt.Println(err)
	// Output:
	// private_key_jwt
	// client_secret_basic
	// clientauth: client_secret is required for this method (client_secret): client_secret_basic authenticates with the client secret and none was given; pass client_secret, or, for a client without a secret, client_token_endpoint_auth_method=none (public client, PKCE) or private_key_jwt (with a key set whose public keys the OP knows)
}

// Rotating a private_key_jwt key without downtime: the new key is
// published at once and signs after the lead time; the old key stays
// published until its last assertions expired.
func ExampleKeySet_Rotate() {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keys, _ := clientauth.GenerateKeySet("RS256", t0)
	newKID, _ := keys.Rotate("ES256", t0, 10*time.Minute)

	show := func(label string, at time.Time) {
		kid, _ := keys.SigningKID(at)
		fmt.Printf("%s: signs with new key %v, published keys: %d\n", label, kid == newKID, len(keys.Public(at).Keys))
	}
	show("rotation", t0)
	show("after the lead", t0.Add(10*time.Minute))
	show("after the grace", t0.Add(10*time.Minute+clientauth.KeyRetireGrace))
	// Output:
	// rotation: signs with new key false, published keys: 2
	// after the lead: signs with new key true, published keys: 2
	// after the grace: signs with new key true, published keys: 1
}
