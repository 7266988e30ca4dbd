package oxd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/oxdgo/oxd/internal/scopeexpr"
	"github.com/oxdgo/oxd/oxdclient"
)

// maxTemplateLen bounds a declared route template.
const maxTemplateLen = 1024

// umaPath is one registered resource path: every condition declared for
// a template.
type umaPath struct {
	template string
	conds    []*umaCond
}

// umaCond is one validated condition.
type umaCond struct {
	methods      []string // declared methods, upper case, unique
	scopes       []string
	ticketScopes []string
	expr         *umaExpr
	browser      bool
	sig          string // canonical form, for de-duplication
}

// umaExpr is a validated scope expression with its rule in compact JSON.
type umaExpr struct {
	rule json.RawMessage
	data []string
}

// umaDecl is one UMAProtect/UMAProtectWith declaration.
type umaDecl struct {
	template string
	conds    []*umaCond
	allow    string // Allow header for undeclared methods
	err      error
}

// condFor returns the condition of the declaration covering method. A
// GET condition covers HEAD unless HEAD is declared.
func (d *umaDecl) condFor(method string) *umaCond {
	var get *umaCond
	for _, c := range d.conds {
		for _, m := range c.methods {
			if m == method {
				return c
			}
			if m == http.MethodGet {
				get = c
			}
		}
	}
	if method == http.MethodHead {
		return get
	}
	return nil
}

// declare validates and records a rule. Invalid rules are recorded as
// errors (RegisterUMA reports them) and their declaration answers 500.
func (g *umaGuard) declare(rule UMARule) *umaDecl {
	d := &umaDecl{template: rule.Template}
	conds, err := validateRule(rule)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		conds, err = g.mergeLocked(rule.Template, conds)
	}
	if err != nil {
		d.err = err
		g.errs = append(g.errs, fmt.Errorf("route %q: %w", rule.Template, err))
		return d
	}
	d.conds = conds
	var allow []string
	for _, c := range conds {
		allow = append(allow, c.methods...)
		if slices.Contains(c.methods, http.MethodGet) && !slices.Contains(allow, http.MethodHead) {
			allow = append(allow, http.MethodHead)
		}
	}
	d.allow = strings.Join(allow, ", ")
	return d
}

// mergeLocked adds a declaration's conditions to its template's path.
// An identical condition declared again is shared; a method declared
// twice otherwise is an error. g.mu is held.
func (g *umaGuard) mergeLocked(template string, conds []*umaCond) ([]*umaCond, error) {
	for _, t := range g.order {
		if t != template && strings.EqualFold(t, template) {
			return nil, fmt.Errorf("template differs from the declared %q only in case; oxd matches paths case-insensitively", t)
		}
	}
	p := g.paths[template]
	if p == nil {
		p = &umaPath{template: template}
	}
	out := make([]*umaCond, 0, len(conds))
	var add []*umaCond
	for _, c := range conds {
		var same *umaCond
		for _, e := range p.conds {
			if e.sig == c.sig {
				same = e
				break
			}
			for _, m := range c.methods {
				if slices.Contains(e.methods, m) {
					return nil, fmt.Errorf("method %s is declared twice for this template (oxd: http_method_not_unique)", m)
				}
			}
		}
		if same != nil {
			out = append(out, same)
			continue
		}
		out = append(out, c)
		add = append(add, c)
	}
	if p.conds == nil && len(add) > 0 {
		g.paths[template] = p
		g.order = append(g.order, template)
	}
	p.conds = append(p.conds, add...)
	return out, nil
}

// validateRule checks a rule on its own.
func validateRule(rule UMARule) ([]*umaCond, error) {
	if err := checkTemplate(rule.Template); err != nil {
		return nil, err
	}
	if len(rule.Conditions) == 0 {
		return nil, errors.New("no conditions (scopes) declared")
	}
	seen := map[string]bool{}
	conds := make([]*umaCond, 0, len(rule.Conditions))
	for i, rc := range rule.Conditions {
		c, err := validateCondition(rc, len(rule.Conditions))
		if err != nil {
			return nil, fmt.Errorf("condition %d: %w", i, err)
		}
		for _, m := range c.methods {
			if seen[m] {
				return nil, fmt.Errorf("method %s is declared twice for this template (oxd: http_method_not_unique)", m)
			}
			seen[m] = true
		}
		c.browser = rule.Browser
		c.sig = condSignature(rule.Template, c)
		conds = append(conds, c)
	}
	return conds, nil
}

func checkTemplate(t string) error {
	if t == "" {
		return errors.New("empty route template")
	}
	if len(t) > maxTemplateLen {
		return errors.New("route template too long")
	}
	for _, r := range t {
		if r <= 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			return fmt.Errorf("route template %q contains a space or control character", t)
		}
	}
	if !strings.Contains(t, "/") {
		return fmt.Errorf("route template %q has no path", t)
	}
	return nil
}

func validateCondition(rc UMACondition, n int) (*umaCond, error) {
	c := &umaCond{}
	methods := rc.Methods
	if len(methods) == 0 {
		if n > 1 {
			return nil, errors.New("no methods (only a single condition may omit them)")
		}
		methods = defaultUMAMethods
	}
	for _, m := range methods {
		if !validToken(m) || strings.ContainsAny(m, "()<>@,;:/[]?={}") {
			return nil, fmt.Errorf("invalid HTTP method %q", m)
		}
		m = strings.ToUpper(m)
		if slices.Contains(c.methods, m) {
			return nil, fmt.Errorf("method %s listed twice", m)
		}
		c.methods = append(c.methods, m)
	}
	if rc.ScopeExpression != nil {
		if len(rc.Scopes) > 0 {
			return nil, errors.New("set Scopes or ScopeExpression, not both")
		}
		if len(rc.TicketScopes) > 0 {
			return nil, errors.New("TicketScopes cannot be combined with ScopeExpression (the expression's Data are the ticket scopes)")
		}
		e, err := validateExpression(rc.ScopeExpression)
		if err != nil {
			return nil, err
		}
		c.expr = e
		return c, nil
	}
	if len(rc.Scopes) == 0 {
		return nil, errors.New("no scopes")
	}
	var err error
	if c.scopes, err = checkScopes(rc.Scopes); err != nil {
		return nil, err
	}
	if len(rc.TicketScopes) > 0 {
		if c.ticketScopes, err = checkScopes(rc.TicketScopes); err != nil {
			return nil, fmt.Errorf("ticket scopes: %w", err)
		}
		for _, s := range c.ticketScopes {
			if !slices.Contains(c.scopes, s) {
				return nil, fmt.Errorf("ticket scope %q is not one of the scopes (the AS only knows the resource's scopes)", s)
			}
		}
	}
	return c, nil
}

// checkScopes validates scope tokens and drops duplicates.
func checkScopes(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !validToken(s) {
			return nil, fmt.Errorf("invalid scope %q", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// validateExpression checks a declared scope expression (package
// scopeexpr) and keeps its compact rule and its data.
func validateExpression(e *UMAScopeExpression) (*umaExpr, error) {
	x, err := scopeexpr.Parse(json.RawMessage(e.Rule), e.Data)
	if err != nil {
		return nil, err
	}
	return &umaExpr{rule: x.Rule, data: x.Data}, nil
}

// condSignature is the canonical form of a condition of a template, as
// oxd stores it (effective ticket scopes).
func condSignature(template string, c *umaCond) string {
	methods := slices.Clone(c.methods)
	return canonicalCondition(template, methods, c.scopes, c.effectiveTicketScopes(), c.exprCanonical()) + fmt.Sprintf("|browser=%t", c.browser)
}

func (c *umaCond) effectiveTicketScopes() []string {
	switch {
	case c.expr != nil:
		return c.expr.data
	case len(c.ticketScopes) > 0:
		return c.ticketScopes
	}
	return c.scopes
}

func (c *umaCond) exprCanonical() string {
	if c.expr == nil {
		return ""
	}
	return scopeexpr.Canonical(c.expr.rule, c.expr.data)
}

// canonicalCondition is one line of the fingerprint of a resource set.
func canonicalCondition(path string, methods, scopes, ticketScopes []string, expr string) string {
	sorted := func(v []string) string {
		s := slices.Clone(v)
		slices.Sort(s)
		return strings.Join(s, " ")
	}
	up := make([]string, len(methods))
	for i, m := range methods {
		up[i] = strings.ToUpper(m)
	}
	return path + "|" + sorted(up) + "|" + sorted(scopes) + "|" + sorted(ticketScopes) + "|" + expr
}

// snapshot returns what RegisterUMA registers: the resources for
// uma_rs_protect (templates in declaration order, conditions in
// declaration order, HEAD added to a GET condition when HEAD is not
// declared), their canonical lines, and the recorded declaration errors.
func (g *umaGuard) snapshot() (res []oxdclient.UMAResource, canon []string, browser bool, errs []error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	errs = slices.Clone(g.errs)
	for _, t := range g.order {
		p := g.paths[t]
		explicitHead := false
		for _, c := range p.conds {
			if slices.Contains(c.methods, http.MethodHead) {
				explicitHead = true
			}
		}
		r := oxdclient.UMAResource{Path: t}
		for _, c := range p.conds {
			browser = browser || c.browser
			methods := slices.Clone(c.methods)
			if !explicitHead && slices.Contains(methods, http.MethodGet) {
				methods = append(methods, http.MethodHead)
			}
			oc := oxdclient.UMACondition{HTTPMethods: methods}
			if c.expr != nil {
				oc.ScopeExpression = &oxdclient.UMAScopeExpression{Rule: slices.Clone(c.expr.rule), Data: slices.Clone(c.expr.data)}
			} else {
				oc.Scopes = slices.Clone(c.scopes)
				oc.TicketScopes = slices.Clone(c.ticketScopes)
			}
			r.Conditions = append(r.Conditions, oc)
			canon = append(canon, canonicalCondition(t, methods, c.scopes, c.effectiveTicketScopes(), c.exprCanonical()))
		}
		res = append(res, r)
	}
	slices.Sort(canon)
	return res, canon, browser, errs
}

func fingerprint(canon []string) string {
	h := sha256.New()
	for _, l := range canon {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// RegisterUMA registers every declared route template with oxd
// (uma_rs_protect), once at startup after the routes are declared. It is
// idempotent across restarts: the first registration is made without
// overwrite; when oxd already protects resources for the site, the stored
// set (get_rp) is compared with the declared one and overwritten only
// when it differs, because an overwrite re-creates the resources at the AS
// with new ids and so invalidates the RPTs issued for them.
//
// It fails, registering nothing, when a declaration is invalid
// ([ErrUMADeclaration], listing every invalid declaration), when browser
// mode is used without UMAConfig.ClaimsRedirectURL, and when no issuer
// for the challenges can be found (set UMAConfig.Issuer). Routes declared
// after RegisterUMA are not protected at oxd and answer 500 until it is
// called again.
func (a *Auth) RegisterUMA(ctx context.Context) error {
	g := a.uma()
	res, canon, browser, errs := g.snapshot()
	if len(errs) > 0 {
		return fmt.Errorf("oxd: RegisterUMA: %w: %w", ErrUMADeclaration, errors.Join(errs...))
	}
	s := g.settingsOrDefault(a)
	if (browser || s.browser) && s.claimsRedirect == "" {
		return fmt.Errorf("oxd: RegisterUMA: %w: browser mode needs UMAConfig.ClaimsRedirectURL", ErrUMAConfig)
	}
	if len(res) == 0 {
		return nil
	}
	fp := fingerprint(canon)
	_, err := a.client.UMARSProtect(ctx, oxdclient.UMARSProtectParams{OxdID: a.oxdID, Resources: res})
	switch {
	case err == nil:
		a.log.LogAttrs(ctx, slog.LevelInfo, "oxd: UMA resources registered",
			slog.Int("templates", len(res)), slog.String("fingerprint", fp))
	case errors.Is(err, oxdclient.ErrUMAProtectionExists):
		stored, opHost, gerr := a.storedUMA(ctx)
		if gerr == nil && opHost != "" && g.issuer.Load() == nil && checkIssuer(opHost) == nil {
			g.setIssuer(opHost)
		}
		if gerr == nil && fingerprint(stored) == fp {
			a.log.LogAttrs(ctx, slog.LevelInfo, "oxd: UMA resources unchanged; registration kept",
				slog.Int("templates", len(res)), slog.String("fingerprint", fp))
			break
		}
		if gerr != nil && s.fingerprintFile != "" && readFingerprint(s.fingerprintFile, a.oxdID) == fp {
			a.log.LogAttrs(ctx, slog.LevelInfo, "oxd: UMA resources unchanged (fingerprint file); registration kept",
				slog.Int("templates", len(res)), slog.String("fingerprint", fp))
			break
		}
		if gerr != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "oxd: cannot read the registered UMA resources (get_rp) and no matching UMAConfig.FingerprintFile; re-registering them, which invalidates existing RPTs",
				slog.String("error", gerr.Error()))
		} else {
			a.log.LogAttrs(ctx, slog.LevelInfo, "oxd: UMA resources changed; re-registering (existing RPTs for them become invalid)",
				slog.String("fingerprint", fp), slog.String("registered", fingerprint(stored)))
		}
		if _, err := a.client.UMARSProtect(ctx, oxdclient.UMARSProtectParams{OxdID: a.oxdID, Resources: res, Overwrite: true}); err != nil {
			return registerError(err)
		}
		g.cache.clear()
	default:
		return registerError(err)
	}
	if s.fingerprintFile != "" {
		if err := writeFingerprint(s.fingerprintFile, a.oxdID, fp); err != nil {
			return fmt.Errorf("oxd: RegisterUMA: UMAConfig.FingerprintFile: %w", err)
		}
	}
	if _, err := g.issuerFor(ctx, a); err != nil {
		return fmt.Errorf("oxd: RegisterUMA: %w: %w", ErrUMAConfig, err)
	}
	return nil
}

// fingerprintRecord is the content of UMAConfig.FingerprintFile.
type fingerprintRecord struct {
	OxdID       string `json:"oxd_id"`
	Fingerprint string `json:"uma_resources_fingerprint"`
}

// readFingerprint returns the fingerprint recorded for oxdID, or "".
func readFingerprint(path, oxdID string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 4096 {
		return ""
	}
	var rec fingerprintRecord
	if json.Unmarshal(b, &rec) != nil || rec.OxdID != oxdID {
		return ""
	}
	return rec.Fingerprint
}

// writeFingerprint replaces the file atomically (temporary file, rename).
func writeFingerprint(path, oxdID, fp string) error {
	if readFingerprint(path, oxdID) == fp {
		return nil
	}
	b, _ := json.Marshal(fingerprintRecord{OxdID: oxdID, Fingerprint: fp})
	tmp, err := os.CreateTemp(filepath.Dir(path), ".oxd-uma-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func registerError(err error) error {
	var oe *oxdclient.Error
	if errors.As(err, &oe) {
		switch oe.Code {
		case oxdclient.CodeHTTPMethodNotUnique, oxdclient.CodeInvalidScopeExpression, oxdclient.CodeInvalidUMARequest:
			return fmt.Errorf("oxd: RegisterUMA: %w: uma_rs_protect: %w", ErrUMADeclaration, err)
		}
	}
	return fmt.Errorf("oxd: RegisterUMA: uma_rs_protect: %w", err)
}

// storedUMA reads the resources oxd stores for the site (get_rp) in
// canonical form, and the site's op_host.
func (a *Auth) storedUMA(ctx context.Context) (canon []string, opHost string, err error) {
	rp, err := a.client.GetRP(ctx, oxdclient.GetRPParams{OxdID: a.oxdID})
	if err != nil {
		return nil, "", err
	}
	var node struct {
		OPHost    string `json:"op_host"`
		Resources []struct {
			Path         string            `json:"path"`
			HTTPMethods  []string          `json:"http_methods"`
			Scopes       []string          `json:"scopes"`
			TicketScopes []string          `json:"ticketScopes"`
			Expressions  []json.RawMessage `json:"scope_expressions"`
		} `json:"uma_protected_resources"`
	}
	if err := json.Unmarshal(rp.Node, &node); err != nil {
		return nil, "", fmt.Errorf("get_rp: %w", oxdclient.ErrProtocol)
	}
	for _, r := range node.Resources {
		expr := ""
		if len(r.Expressions) > 0 {
			raw := r.Expressions[0]
			var s string
			if json.Unmarshal(raw, &s) == nil {
				raw = json.RawMessage(s)
			}
			var x struct {
				Rule json.RawMessage `json:"rule"`
				Data []string        `json:"data"`
			}
			if json.Unmarshal(raw, &x) != nil || len(x.Rule) == 0 {
				return nil, "", errors.New("get_rp: unreadable scope expression")
			}
			expr = scopeexpr.Canonical(x.Rule, x.Data)
		}
		canon = append(canon, canonicalCondition(r.Path, r.HTTPMethods, r.Scopes, r.TicketScopes, expr))
	}
	slices.Sort(canon)
	return canon, strings.TrimRight(node.OPHost, "/"), nil
}
