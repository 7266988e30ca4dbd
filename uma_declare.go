package oxd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/oxdgo/oxd/internal/scopeexpr"
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

func validateCondition(rc UMAMethodRule, n int) (*umaCond, error) {
	c := &umaCond{}
	methods := rc.Methods
	if len(methods) == 0 {
		if n > 1 {
			return nil, errors.New("no methods (only a single condition may omit them)")
		}
		methods = defaultUMAMethods
	}
	for _, m := range methods {
		if !scopeexpr.ValidScope(m) || strings.ContainsAny(m, "()<>@,;:/[]?={}") {
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
		if !scopeexpr.ValidScope(s) {
			return nil, fmt.Errorf("invalid scope %q", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// validateExpression checks a scope expression with the shared validator
// (package internal/scopeexpr, also used by the engine): a JsonLogic
// operation whose vars index Data, a list of distinct scopes.
func validateExpression(e *UMAExpression) (*umaExpr, error) {
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
