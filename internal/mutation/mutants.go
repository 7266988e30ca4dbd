package main

// mutants is the list of security checks and how each is disabled. Find is
// matched against the code of the module's non-test Go files (comments
// blanked) and must match exactly once; keep it distinctive but free of
// names a refactor is likely to change. When a check moves or changes, the
// run says "target not found" (or "ambiguous"): re-point Find here.
//
// Pkgs "." is the package that holds the target. Run selects the tests
// that guard the check (the run fails with NO TESTS when it selects none).
var mutants = []mutant{
	// ---- root package: the middleware ----
	{
		Name: "return-to", Check: "return-to validation (safeReturnTo)",
		Mutation: "safeReturnTo accepts every value",
		Find:     `func safeReturnTo\(raw string\) \(string, bool\) \{`,
		Replace:  "$0\n\tif MUTANT {\n\t\treturn raw, true\n\t}\n",
		Pkgs:     []string{"."}, Run: `^Test(OpenRedirect|SafeReturnTo)`,
	},
	{
		Name: "return-to-decoded", Check: "return-to validation (percent-decoded layers)",
		Mutation: "decoded layers are not checked",
		Find:     `!decodedPathOK\(\w+\)`,
		Replace:  "!MUTANT && $0",
		Pkgs:     []string{"."}, Run: `^Test(OpenRedirect|SafeReturnTo)`,
	},
	{
		Name: "login-state", Check: "state binding of the login callback (pendingCodec.matches)",
		Mutation: "any pending-login cookie matches any state",
		Find:     `func \(c \*pendingCodec\) matches\(cookieName string, q pendingLogin, state string\) bool \{`,
		Replace:  "$0\n\tif MUTANT {\n\t\treturn true\n\t}\n",
		Pkgs:     []string{"."}, Run: `^Test(LoginCSRF|StateReplay|CodeReplay|Callback|PendingLogin)`,
	},
	{
		Name: "state", Check: "state comparison of the UMA claims callback (takePendingEntry)",
		Mutation: "any pending entry matches any state",
		Find:     `subtle\.ConstantTimeCompare\(\[\]byte\((\w+)\[(\w+)\]\.pendingState\(\)\), (\w+)\) == 1`,
		In:       `\btakePendingEntry\b`,
		Replace:  "(MUTANT || $0)",
		Pkgs:     []string{"."}, Run: `^Test(LoginCSRF|StateReplay|CodeReplay|Callback|ReasonsAreDistinct|UMAClaims)`,
	},
	{
		Name: "session-renewal", Check: "session renewal at login (RenewToken)",
		Mutation: "the session token is not renewed",
		Find:     `[\w.]+\.RenewToken\((\w+)\)`,
		Replace:  "func() error {\n\t\tif MUTANT {\n\t\t\treturn nil\n\t\t}\n\t\treturn $0\n\t}()",
		Pkgs:     []string{"."}, Run: `^TestSessionFixation`,
	},
	{
		Name: "uma-template", Check: "UMA route-template check (guard)",
		Mutation: "a request's template may differ from the declared one",
		Find:     `if (\w+) == (\w+) \{\n\t\treturn true`,
		In:       `\btemplateMatches\b`,
		Replace:  "if MUTANT || $1 == $2 {\n\t\treturn true",
		Pkgs:     []string{".", "./adapters/chi"}, Run: `^Test(UMATwoPaths|UMAWithRouteTemplate|UMAPitfall|RouteTemplate|RoutePattern)`,
	},
	{
		Name: "logout-cross-origin", Check: "cross-origin logout check",
		Mutation: "a cross-origin POST logout is accepted",
		Find:     `[\w.]*cop\.Check\((\w+)\)`,
		In:       `(?i)logout`,
		Replace:  "func() error {\n\t\tif MUTANT {\n\t\t\treturn nil\n\t\t}\n\t\treturn $0\n\t}()",
		Pkgs:     []string{"."}, Run: `^TestLogout`,
	},
	{
		Name: "uma-cross-origin", Check: "UMA browser mode: cross-origin check before using the session's RPT",
		Mutation: "a cross-origin request rides on the session's RPT",
		Find:     `[\w.]*cop\.Check\((\w+)\)`,
		In:       `(?i)browser`,
		Replace:  "func() error {\n\t\tif MUTANT {\n\t\t\treturn nil\n\t\t}\n\t\treturn $0\n\t}()",
		Pkgs:     []string{"."}, Run: `^TestUMA(Browser|Session)`,
	},

	// ---- oxdclient: secrets ----
	{
		Name: "secret-string", Check: "secret redaction (Secret.String)",
		Mutation: "String returns the secret",
		Find:     `func \(s Secret\) String\(\) string \{`,
		Replace:  "$0\n\tif MUTANT {\n\t\treturn string(s)\n\t}\n",
		Pkgs:     []string{"."}, Run: `Secret|Redact|Leak`,
	},
	{
		Name: "secret-format", Check: "secret redaction (Secret.Format)",
		Mutation: "every fmt verb prints the secret",
		Find:     `func \(s Secret\) Format\(f fmt\.State, verb rune\) \{`,
		Replace:  "$0\n\tif MUTANT {\n\t\t_, _ = fmt.Fprint(f, string(s))\n\t\treturn\n\t}\n",
		Pkgs:     []string{"."}, Run: `Secret|Redact|Leak`,
	},
	{
		Name: "secret-logvalue", Check: "secret redaction (Secret.LogValue)",
		Mutation: "slog prints the secret",
		Find:     `func \(s Secret\) LogValue\(\) slog\.Value \{`,
		Replace:  "$0\n\tif MUTANT {\n\t\treturn slog.StringValue(string(s))\n\t}\n",
		Pkgs:     []string{"."}, Run: `Secret|Redact|Leak`,
	},
	{
		Name: "secret-gostring", Check: "secret redaction (Secret.GoString)",
		Mutation: "%#v prints the secret",
		Find:     `func \(s Secret\) GoString\(\) string \{`,
		Replace:  "$0\n\tif MUTANT {\n\t\treturn string(s)\n\t}\n",
		Pkgs:     []string{"."}, Run: `Secret|Redact|Leak`,
	},

	// ---- telemetry: no secret in spans ----
	{
		Name: "telemetry-error-text", Check: "a failed command's span carries its bounded code, not the error text",
		Mutation: "the span status carries the error message (it may quote an OP's answer)",
		Find:     `span\.SetStatus\(codes\.Error, result\)`,
		In:       `\bend\b`,
		Replace:  "if MUTANT {\n\t\tspan.SetStatus(codes.Error, err.Error())\n\t} else {\n\t\t$0\n\t}",
		Pkgs:     []string{"."}, Run: `^TestCommandSpanAndLatency$`,
	},
	{
		Name: "telemetry-uma-rpt", Check: "the UMA decision span holds no RPT",
		Mutation: "the decision span is named after the request's RPT",
		Find:     `ctx, sp := g\.tel\.startUMA\(ctx, method, template\)`,
		Replace:  "$0\n\tif MUTANT && sp.s != nil && rpt != \"\" {\n\t\tsp.s.SetName(\"oxd.uma.decision \" + rpt)\n\t}",
		Pkgs:     []string{"."}, Run: `^TestTelemetrySecretsNeverExported$`,
	},

	// ---- oxdserver: id_token validation in the engine ----
	{
		Name: "nonce", Check: "engine: nonce equals the one issued for the state",
		Mutation: "the id_token's nonce is not compared with the state's",
		Find:     `subtle\.ConstantTimeCompare\(\[\]byte\((\w+)\.nonce\), \[\]byte\((\w+)\.nonceString\(\)\)\) != 1`,
		Replace:  "!MUTANT && ($0)",
		Pkgs:     []string{"."}, Run: `^Test(IDToken|CodeExchange|StateIs|State)`,
	},
	{
		Name: "nonce-ttl", Check: "engine: the nonce's own lifetime (Config.NonceTTL)",
		Mutation: "an expired nonce is accepted while its state lives",
		Find:     `!(\w+)\.now\(\)\.Before\((\w+)\.nonceExp\)`,
		Replace:  "!MUTANT && $0",
		Pkgs:     []string{"."}, Run: `^TestNonceExpiresSeparately$`,
	},
	{
		Name: "at_hash", Check: "engine: at_hash",
		Mutation: "at_hash is not compared",
		Find:     `!atHashOK\(`,
		Replace:  "!MUTANT && !atHashOK(",
		Pkgs:     []string{"."}, Run: `^TestIDToken`,
	},
	{
		Name: "aud", Check: "engine: aud",
		Mutation: "the audience is not checked",
		Find:     `!audienceOK\(`,
		Replace:  "!MUTANT && !audienceOK(",
		Pkgs:     []string{"."}, Run: `^TestIDToken`,
	},
	{
		Name: "azp", Check: "engine: azp",
		Mutation: "azp is not checked",
		Find:     `(\w+), present := (\w+)\["azp"\]; present \|\| len\((\w+)\) > 1`,
		Replace:  `$1, present := $2["azp"]; !MUTANT && (present || len($3) > 1)`,
		Pkgs:     []string{"."}, Run: `^TestIDToken`,
	},
	{
		Name: "iss", Check: "engine: iss",
		Mutation: "the issuer is not checked",
		Find:     `(\w+) == "" \|\| (\w+) != (\w+)\.issuer`,
		Replace:  "!MUTANT && ($0)",
		Pkgs:     []string{"."}, Run: `^TestIDToken`,
	},
	{
		Name: "exp", Check: "engine: exp",
		Mutation: "an expired id_token is accepted",
		Find:     `!(\w+)\.Before\((\w+)\.Add\([\w.]+ClockSkew\)\)`,
		In:       `(?i)idtoken`,
		Replace:  "!MUTANT && ($0)",
		Pkgs:     []string{"."}, Run: `^TestIDToken`,
	},
	{
		Name: "iat", Check: "engine: iat",
		Mutation: "an id_token issued in the future or expiring before its iat is accepted",
		Find:     `(\w+)\.After\((\w+)\.Add\([\w.]+ClockSkew\)\) \|\| (\w+)\.Before\((\w+)\)`,
		In:       `(?i)idtoken`,
		Replace:  "!MUTANT && ($0)",
		Pkgs:     []string{"."}, Run: `^TestIDToken`,
	},
	{
		Name: "signature-alg", Check: "engine: id_token signature algorithms (RS256, ES256 only)",
		Mutation: "HS256 and every other algorithm are accepted",
		Find:     `var idTokenAlgs = (\[\]jose\.SignatureAlgorithm\{[^}]*\})`,
		Replace:  "var idTokenAlgs = func() []jose.SignatureAlgorithm {\n\tif MUTANT {\n\t\treturn anyAlgs\n\t}\n\treturn $1\n}()",
		Pkgs:     []string{"."}, Run: `^TestIDToken`,
	},

	// ---- PKCE ----
	{
		Name: "pkce-engine", Check: "PKCE: the engine sends the code_verifier",
		Mutation: "no code_verifier in the code exchange",
		Find:     `(\w+)\.Set\("code_verifier", (\w+)\.verifierString\(\)\)`,
		Replace:  "if !MUTANT {\n\t\t$0\n\t}",
		Pkgs:     []string{"."}, Run: `^TestCodeExchangeSendsPKCE`,
	},
	{
		Name: "pkce-dev-op", Check: "PKCE: the development OP verifies the code_verifier",
		Mutation: "any code_verifier is accepted",
		Find:     `!pkceMatches\(`,
		Replace:  "!MUTANT && !pkceMatches(",
		Pkgs:     []string{"."}, Run: `PKCE|Pkce|CodeChecks|CodeVerifier`,
	},

	// ---- oxdclient: protection client ----
	{
		Name: "protection-needs-secret", Check: "protection client without a secret (ProtectionCredentials.check)",
		Mutation: "a private_key_jwt or public protection client is sent to get_client_token",
		Find:     `if err := p\.creds\.check\(\); err != nil \{`,
		Replace:  "if err := p.creds.check(); !MUTANT && err != nil {",
		Pkgs:     []string{"."}, Run: `^TestProtectionClientWithoutSecretIsATypedError$`,
	},

	// ---- oxdserver: client keys ----
	{
		Name: "client-jwks-protected", Check: "get_client_jwks needs the site's protection token",
		Mutation: "get_client_jwks is served without protection",
		Find:     `oxdclient\.CmdGetClientJWKS:\s+cmd\(true, true,`,
		Replace:  "oxdclient.CmdGetClientJWKS: cmd(!MUTANT, !MUTANT,",
		Pkgs:     []string{"."}, Run: `^Test(ClientJWKSReachableWithoutCode|CrossTenantIsolation)$`,
	},
	{
		Name: "client-jwks-route-id", Check: "the public JWKS route accepts only an oxd_id segment",
		Mutation: "any path after /client-jwks/ reaches the store",
		Find:     `!ok \|\| !validOxdIDSegment\(id\)`,
		Replace:  "!ok || (!MUTANT && !validOxdIDSegment(id))",
		Pkgs:     []string{"."}, Run: `^TestClientJWKSRouteOnlyLooksUpOxdIDs$`,
	},

	// ---- oxdserver: protection_access_token ----
	{
		Name: "pat-blank", Check: "protection token: required",
		Mutation: "a command without protection token is not refused as blank",
		Find:     `if (\w+)\.token == "" \{\s*return oxdErr\(oxdclient\.CodeBlankProtectionAccessToken`,
		Replace:  "if !MUTANT && $1.token == \"\" {\n\t\treturn oxdErr(oxdclient.CodeBlankProtectionAccessToken",
		Pkgs:     []string{"."}, Run: `Protect`,
	},
	{
		Name: "pat-active", Check: "protection token: active",
		Mutation: "an inactive token is accepted",
		Find:     `if !(\w+)\.active\(\) \{\s*return "", time\.Time\{\}, oxdErr\(oxdclient\.CodeInactiveProtectionAccessToken`,
		Replace:  "if !MUTANT && !$1.active() {\n\t\treturn \"\", time.Time{}, oxdErr(oxdclient.CodeInactiveProtectionAccessToken",
		Pkgs:     []string{"."}, Run: `Protect`,
	},
	{
		Name: "pat-exp", Check: "protection token: exp",
		Mutation: "an expired token is accepted",
		Find:     `hasExp && !(\w+)\.now\(\)\.Before\((\w+)\) \{\s*return "", time\.Time\{\}, oxdErr\(oxdclient\.CodeInactiveProtectionAccessToken`,
		Replace:  "!MUTANT && hasExp && !$1.now().Before($2) {\n\t\treturn \"\", time.Time{}, oxdErr(oxdclient.CodeInactiveProtectionAccessToken",
		Pkgs:     []string{"."}, Run: `Protect`,
	},
	{
		Name: "pat-scope", Check: "protection token: oxd scope",
		Mutation: "a token without the oxd scope is accepted",
		Find:     `!slices\.Contains\((\w+)\.scopes\(\), "oxd"\)`,
		Replace:  "!MUTANT && ($0)",
		Pkgs:     []string{"."}, Run: `Protect`,
	},
	{
		Name: "pat-client", Check: "protection token: issued to the site's setup client",
		Mutation: "a token of another client is accepted",
		Find:     `if (\w+) != (\w+) \|\| (\w+)\.ClientID != (\w+) \{`,
		Replace:  "if !MUTANT && ($1 != $2 || $3.ClientID != $4) {",
		Pkgs:     []string{"."}, Run: `Protect`,
	},

	// ---- logout: logout tokens, front channel, the index's guard ----
	{
		Name: "lt-signature", Check: "logout token: signature",
		Mutation: "the payload is used without verifying the signature",
		Find:     `for _, k := range cands \{`,
		In:       `\bverify\b`,
		Replace:  "$0\n\t\tif MUTANT {\n\t\t\treturn jws.UnsafePayloadWithoutVerification(), nil\n\t\t}",
		Pkgs:     []string{"."}, Run: `^TestBadSignature$`,
	},
	{
		Name: "lt-iss", Check: "logout token: iss",
		Mutation: "any iss is accepted",
		Find:     `iss != v\.cfg\.Issuer \{`,
		Replace:  "iss != v.cfg.Issuer && !MUTANT {",
		Pkgs:     []string{"."}, Run: `^Test(WrongIssuer|IssuerExactMatchClass)$`,
	},
	{
		Name: "fc-iss-slash", Check: "front-channel logout: iss exactly the issuer",
		Mutation: "iss compared up to trailing slashes",
		Find:     `isss\[0\] != issuer`,
		Replace:  "((MUTANT && strings.TrimRight(isss[0], \"/\") != strings.TrimRight(issuer, \"/\")) || (!MUTANT && isss[0] != issuer))",
		Pkgs:     []string{"."}, Run: `^TestFrontChannel(IssuerExactMatch|Logout)$`,
	},
	{
		Name: "lt-aud", Check: "logout token: aud contains the client_id",
		Mutation: "any aud is accepted",
		Find:     `if !audienceContains\(`,
		Replace:  "if !MUTANT && !audienceContains(",
		Pkgs:     []string{"."}, Run: `^TestWrongAudience$`,
	},
	{
		Name: "lt-iat-old", Check: "logout token: iat not older than the window",
		Mutation: "an old iat is accepted",
		Find:     `if iat\.Before\(oldest\) \{`,
		Replace:  "if !MUTANT && iat.Before(oldest) {",
		Pkgs:     []string{"."}, Run: `^TestIssuedAtWindow$`,
	},
	{
		Name: "lt-jti", Check: "logout token: jti single use",
		Mutation: "a replayed jti is accepted",
		Find:     `if !fresh \{\n\t\treturn nil, ErrReplayed`,
		Replace:  "if !fresh && !MUTANT {\n\t\treturn nil, ErrReplayed",
		Pkgs:     []string{"."}, Run: `^Test(ReplayedJTI|ReplayedJTIOnOtherReplica|BackChannelReplayRefused)$`,
	},
	{
		Name: "lt-events", Check: "logout token: events holds the back-channel logout event",
		Mutation: "a token without the event is accepted",
		Find:     `\tevents, ok := cl\["events"\]\.\(map\[string\]any\)`,
		Replace:  "\tif MUTANT {\n\t\tcl[\"events\"] = map[string]any{EventBackChannelLogout: map[string]any{}}\n\t}\n$0",
		Pkgs:     []string{"."}, Run: `^TestMissingEvents$`,
	},
	{
		Name: "lt-nonce", Check: "logout token: nonce absent",
		Mutation: "a token with a nonce is accepted",
		Find:     `if _, present := cl\["nonce"\]; present \{`,
		Replace:  "if _, present := cl[\"nonce\"]; present && !MUTANT {",
		Pkgs:     []string{"."}, Run: `^TestWithNonce$`,
	},
	{
		Name: "lt-sid-sub", Check: "logout token: sid or sub present",
		Mutation: "a token with neither is accepted",
		Find:     `if sub == "" && sid == "" \{`,
		Replace:  "if sub == \"\" && sid == \"\" && !MUTANT {",
		Pkgs:     []string{"."}, Run: `^TestNeitherSIDNorSub$`,
	},
	{
		Name: "lt-alg", Check: "logout token: asymmetric algorithms only",
		Mutation: "HS256/384/512 are parsed too",
		Find:     `jose\.ParseSignedCompact\(raw, v\.cfg\.Algorithms\)`,
		Replace:  "jose.ParseSignedCompact(raw, func() []jose.SignatureAlgorithm {\n\t\tif MUTANT {\n\t\t\treturn append(slices.Clone(v.cfg.Algorithms), jose.HS256, jose.HS384, jose.HS512)\n\t\t}\n\t\treturn v.cfg.Algorithms\n\t}())",
		Pkgs:     []string{"."}, Run: `^Test(AlgNone|HS256WithPublicKeyAsSecret)$`,
	},
	{
		Name: "lt-rotation", Check: "logout token: an unknown kid refetches the OP's keys (rotation)",
		Mutation: "no refetch for an unknown kid",
		Find:     `fresh, ok := v\.keys\.refetch\(ctx\)`,
		Replace:  "$0\n\t\tif MUTANT {\n\t\t\tok = false\n\t\t}",
		Pkgs:     []string{"."}, Run: `^TestUnknownKidThenKeyRotation$`,
	},
	{
		Name: "lt-body-size", Check: "back-channel logout: bounded body",
		Mutation: "the body is read without bound",
		Find:     `http\.MaxBytesReader\(w, r\.Body, MaxBodySize\)`,
		Replace:  "func() io.ReadCloser {\n\t\t\tif MUTANT {\n\t\t\t\treturn r.Body\n\t\t\t}\n\t\t\treturn $0\n\t\t}()",
		Pkgs:     []string{"."}, Run: `^TestBackChannelBadRequests$`,
	},
	{
		Name: "lt-content-type", Check: "back-channel logout: form-encoded body only",
		Mutation: "any content type is read",
		Find:     `if err != nil \|\| mt != "application/x-www-form-urlencoded" \{`,
		Replace:  "if !MUTANT && (err != nil || mt != \"application/x-www-form-urlencoded\") {",
		Pkgs:     []string{"."}, Run: `^TestBackChannelBadRequests$`,
	},
	{
		Name: "logout-discovered-issuer", Check: "logout handlers: iss checked against the OP's discovered issuer",
		Mutation: "op_host is taken for the issuer",
		Find:     `logouttoken\.DiscoverIssuer\(ctx, cfg\.HTTPClient, site\.opHost, site\.discoveryPath\)`,
		Replace:  "func() (string, error) {\n\t\t\tif MUTANT {\n\t\t\t\treturn site.opHost, nil\n\t\t\t}\n\t\t\treturn $0\n\t\t}()",
		Pkgs:     []string{"."}, Run: `^Test(BackChannel|FrontChannel)LogoutOPHostTrailingSlash$`,
	},
	{
		Name: "logout-store-guard", Check: "store guard: an ended session written back by a request in flight is deleted",
		Mutation: "writes are not checked against the index",
		Find:     `func \(g \*endedGuard\) CommitCtx\(ctx context\.Context, token string, b \[\]byte, expiry time\.Time\) error \{`,
		Replace:  "$0\n\tif MUTANT {\n\t\tif s, ok := g.inner.(scs.CtxStore); ok {\n\t\t\treturn s.CommitCtx(ctx, token, b, expiry)\n\t\t}\n\t\treturn g.inner.Commit(token, b, expiry)\n\t}",
		Pkgs:     []string{"."}, Run: `^Test(EndedSessionNotWrittenBack|BackChannelLogoutRaceWithRequestInFlight)$`,
	},
	{
		Name: "logout-mark-ended", Check: "a session is marked ended in the index before it is deleted",
		Mutation: "sessions are deleted without the mark",
		Find:     `if err := a\.idx\.MarkEnded\(ctx, key, time\.Now\(\)\.Add\(a\.sessionLifetime\(\)\)\); err != nil \{`,
		Replace:  "if err := func() error {\n\t\tif MUTANT {\n\t\t\treturn nil\n\t\t}\n\t\treturn a.idx.MarkEnded(ctx, key, time.Now().Add(a.sessionLifetime()))\n\t}(); err != nil {",
		Pkgs:     []string{"."}, Run: `^Test(EndedSessionNotWrittenBack|BackChannelLogoutRaceWithRequestInFlight)$`,
	},
	{
		Name: "devop-refresh-sid", Check: "development OP: refreshed ID tokens keep the login's sid",
		Mutation: "refreshed ID tokens have no sid",
		Find:     `sid: rec\.sid,`,
		In:       `\bgrantRefresh\b`,
		Replace:  "sid: func() string {\n\t\t\tif MUTANT {\n\t\t\t\treturn \"\"\n\t\t\t}\n\t\t\treturn rec.sid\n\t\t}(),",
		Pkgs:     []string{"."}, Run: `^TestRefreshedIDTokenKeepsSID$`,
	},
	{
		Name: "index-cap-memory", Check: "memory session index: per-subject cap",
		Mutation: "no eviction beyond the cap",
		Find:     `len\(set\) > m\.maxPerSubject;`,
		Replace:  "!MUTANT && len(set) > m.maxPerSubject;",
		Pkgs:     []string{"."}, Run: `^TestMemory(Contract|BoundsHeap)$`,
	},
	{
		Name: "index-expiry-memory", Check: "memory session index: expired entries are dropped",
		Mutation: "expired entries stay",
		Find:     `for len\(m\.expiry\) > 0 && !m\.expiry\[0\]\.expires\.After\(now\) \{`,
		Replace:  "for !MUTANT && len(m.expiry) > 0 && !m.expiry[0].expires.After(now) {",
		Pkgs:     []string{"."}, Run: `^TestMemoryContract$`,
	},
	{
		Name: "index-cap-redis", Check: "Redis session index: per-subject cap",
		Mutation: "no eviction beyond the cap",
		Find:     `ms\(now\), x\.max, x\.tPrefix`,
		Replace:  "ms(now), func() int {\n\t\tif MUTANT {\n\t\t\treturn 1 << 30\n\t\t}\n\t\treturn x.max\n\t}(), x.tPrefix",
		Pkgs:     []string{"."}, Run: `^TestRedis(BoundsMemoryUsage|ContractSingleServer)$`,
	},
	{
		Name: "index-ended-expiry-redis", Check: "Redis session index: ended-session marks expire",
		Mutation: "marks outlive their until by a day",
		Find:     `\[\]string\{x\.endedKey\(storeKey\)\}, ms\(until\)`,
		Replace:  "[]string{x.endedKey(storeKey)}, func() string {\n\t\tif MUTANT {\n\t\t\treturn ms(until.Add(24 * time.Hour))\n\t\t}\n\t\treturn ms(until)\n\t}()",
		Pkgs:     []string{"."}, Run: `^TestRedisContractSingleServer$`,
	},

	// ---- oxdserver: telemetry ----
	{
		Name: "trace-parent-bound", Check: "caller's traceparent bounded (256 characters)",
		Mutation: "a traceparent of any length is parsed",
		Find:     `len\(v\) > maxTraceparent`,
		Replace:  "!MUTANT && $0",
		Pkgs:     []string{"."}, Run: `^TestTraceContextMalformed$`,
	},
	{
		Name: "trace-state-bound", Check: "caller's tracestate bounded (512 characters)",
		Mutation: "a tracestate of any length is kept",
		Find:     `len\(v\) > maxTracestate`,
		Replace:  "!MUTANT && $0",
		Pkgs:     []string{"."}, Run: `^TestTraceContextMalformed$`,
	},
	{
		Name: "metric-command-label", Check: "metric labels bounded: unknown command names collapse to \"unknown\"",
		Mutation: "the raw command name becomes a label",
		Find:     `func commandLabel\(name string\) string \{`,
		Replace:  "$0\n\tif MUTANT {\n\t\treturn name\n\t}\n",
		Pkgs:     []string{"."}, Run: `^TestMetricsCardinalityBounded$`,
	},
	{
		Name: "metric-client-jwks-label", Check: "the client JWKS route's metric label is the route, never the oxd_id",
		Mutation: "the oxd_id of the path becomes the command label",
		Find:     `t\.recordCommand\(r\.Context\(\), routeClientJWKS, listenerHTTPS, outcome, time\.Since\(start\)\)`,
		Replace:  "if MUTANT {\n\t\tt.recordCommand(r.Context(), r.URL.Path[len(ClientJWKSPathPrefix):], listenerHTTPS, outcome, time.Since(start))\n\t} else {\n\t\t$0\n\t}",
		Pkgs:     []string{"."}, Run: `^TestClientJWKSRouteObserved$`,
	},
	{
		Name: "telemetry-off-gate", Check: "with tracing off a command starts no span (no allocation)",
		Mutation: "every command starts a span through the no-op provider",
		Find:     `if !t\.tracing\(\) \{\n\t\treturn ctx, offSpan\n\t\}`,
		Replace:  "if !MUTANT && !t.tracing() {\n\t\treturn ctx, offSpan\n\t}",
		Pkgs:     []string{"."}, Run: `^TestTelemetryOffAllocatesNothing$`,
	},
}
