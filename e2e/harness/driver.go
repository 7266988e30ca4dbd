package harness

// DriverFor returns an OIDCProvider value for a provider this package did not
// start (for example one started behind a proxy, whose issuer is the proxy's
// URL), so that its HTTP drivers (LoginHTTP, LogoutHTTP, GatherClaimsHTTP)
// can be used. Process returns nil on it.
func DriverFor(issuer string) *OIDCProvider {
	return &OIDCProvider{issuer: issuer}
}
