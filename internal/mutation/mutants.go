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
		Find:     `(\w+)\.nonce != (\w+)\.Nonce`,
		Replace:  "!MUTANT && ($0)",
		Pkgs:     []string{"."}, Run: `^Test(IDToken|CodeExchange|StateIs|State)`,
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
		Find:     `(\w+)\.Set\("code_verifier", (\w+)\.Verifier\)`,
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
}
