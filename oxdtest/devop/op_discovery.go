package devop

import "net/http"

// claimsSupported lists the claims the OP can release.
var claimsSupported = []string{
	"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
	"name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
	"picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
	"email", "email_verified",
}

// handleDiscovery serves OpenID Provider metadata (OIDC Discovery §3).
func (op *OP) handleDiscovery(w http.ResponseWriter, r *http.Request, _ string) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	doc := map[string]any{
		"issuer":                                           op.issuer,
		"authorization_endpoint":                           op.url(pathAuthorize),
		"token_endpoint":                                   op.url(pathToken),
		"userinfo_endpoint":                                op.url(pathUserinfo),
		"jwks_uri":                                         op.url(pathJWKS),
		"registration_endpoint":                            op.url(pathRegistration),
		"end_session_endpoint":                             op.url(pathEndSession),
		"introspection_endpoint":                           op.url(pathIntrospection),
		"revocation_endpoint":                              op.url(pathRevocation),
		"scopes_supported":                                 supportedScopes,
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"grant_types_supported":                            supportedGrantTypes,
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            op.authMethods(),
		"token_endpoint_auth_signing_alg_values_supported": assertionAlgs(),
		"introspection_endpoint_auth_methods_supported":    without(op.authMethods(), authNone),
		"introspection_endpoint_auth_signing_alg_values_supported": assertionAlgs(),
		"revocation_endpoint_auth_methods_supported":               op.authMethods(),
		"revocation_endpoint_auth_signing_alg_values_supported":    assertionAlgs(),
		"id_token_signing_alg_values_supported":                    []string{"RS256"},
		"subject_types_supported":                                  []string{"public"},
		"claims_supported":                                         claimsSupported,
		"claims_parameter_supported":                               false,
		"request_parameter_supported":                              false,
		"request_uri_parameter_supported":                          false,
		"prompt_values_supported":                                  []string{"none", "login", "consent"},
		"authorization_response_iss_parameter_supported":           !op.cfg.DisableAuthorizationResponseIss,
		"frontchannel_logout_supported":                            true,
		"frontchannel_logout_session_supported":                    true,
		"backchannel_logout_supported":                             true,
		"backchannel_logout_session_supported":                     true,
	}
	op.dropDisabled(doc)
	writeJSON(w, http.StatusOK, doc)
}

// dropDisabled removes the endpoints switched off by OPConfig.
func (op *OP) dropDisabled(doc map[string]any) {
	if op.cfg.DisableRegistration {
		delete(doc, "registration_endpoint")
	}
	if op.cfg.DisableEndSession {
		delete(doc, "end_session_endpoint")
	}
	if op.cfg.DisableRevocation {
		delete(doc, "revocation_endpoint")
		delete(doc, "revocation_endpoint_auth_methods_supported")
		delete(doc, "revocation_endpoint_auth_signing_alg_values_supported")
	}
}

// assertionAlgs are the client assertion algorithms the OP verifies.
func assertionAlgs() []string {
	return append(append([]string{}, hmacAssertionAlgs...), keyAssertionAlgs...)
}

func without(list []string, drop string) []string {
	out := []string{}
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

// handleUMADiscovery serves UMA 2.0 AS metadata (UMA Grant §2, FedAuthz §2).
func (op *OP) handleUMADiscovery(w http.ResponseWriter, r *http.Request, _ string) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	doc := map[string]any{
		"issuer":                                           op.issuer,
		"authorization_endpoint":                           op.url(pathAuthorize),
		"token_endpoint":                                   op.url(pathToken),
		"jwks_uri":                                         op.url(pathJWKS),
		"registration_endpoint":                            op.url(pathRegistration),
		"introspection_endpoint":                           op.url(pathIntrospection),
		"revocation_endpoint":                              op.url(pathRevocation),
		"resource_registration_endpoint":                   op.url(pathResourceSet),
		"permission_endpoint":                              op.url(pathPermission),
		"claims_interaction_endpoint":                      op.url(pathClaims),
		"scopes_supported":                                 supportedScopes,
		"response_types_supported":                         []string{"code"},
		"grant_types_supported":                            supportedGrantTypes,
		"token_endpoint_auth_methods_supported":            without(op.authMethods(), authNone),
		"token_endpoint_auth_signing_alg_values_supported": assertionAlgs(),
		"code_challenge_methods_supported":                 []string{"S256"},
		"claim_token_profiles_supported":                   []string{claimTokenFormatIDToken},
		"uma_profiles_supported":                           []string{},
	}
	op.dropDisabled(doc)
	writeJSON(w, http.StatusOK, doc)
}
