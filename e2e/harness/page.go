package harness

import (
	"html"
	"net/url"
	"regexp"
	"strings"
)

// page is the little the HTTP drivers need from a provider page: the first
// form's action and the inputs, plus any error the page shows. The provider's
// pages are small and known, so a tag scanner is enough.
type page struct {
	action string
	inputs []input
	errors []string
}

type input struct {
	typ, name, value string
}

var (
	tagRe       = regexp.MustCompile(`(?is)<(form|input)\b([^>]*)>`)
	attrRe      = regexp.MustCompile(`(?s)([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))`)
	errorElemRe = regexp.MustCompile(`(?is)<(p|div|span)\b[^>]*\b(?:class="[^"]*\bop-error\b[^"]*"|id="error")[^>]*>(.*?)</(?:p|div|span)>`)
	stripTagsRe = regexp.MustCompile(`(?s)<[^>]*>`)
)

func parsePage(s string) *page {
	p := &page{}
	formSeen := false
	for _, m := range tagRe.FindAllStringSubmatch(s, -1) {
		attrs := parseAttrs(m[2])
		switch strings.ToLower(m[1]) {
		case "form":
			if !formSeen {
				formSeen = true
				p.action = attrs["action"]
			}
		case "input":
			p.inputs = append(p.inputs, input{
				typ:   strings.ToLower(attrs["type"]),
				name:  attrs["name"],
				value: attrs["value"],
			})
		}
	}
	for _, m := range errorElemRe.FindAllStringSubmatch(s, -1) {
		txt := strings.Join(strings.Fields(html.UnescapeString(stripTagsRe.ReplaceAllString(m[2], ""))), " ")
		if txt != "" {
			p.errors = append(p.errors, txt)
		}
	}
	return p
}

func parseAttrs(s string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRe.FindAllStringSubmatch(s, -1) {
		v := m[2]
		if v == "" {
			v = m[3]
		}
		if v == "" {
			v = m[4]
		}
		out[strings.ToLower(m[1])] = html.UnescapeString(v)
	}
	return out
}

// has reports whether the page has an input named name.
func (p *page) has(name string) bool {
	for _, in := range p.inputs {
		if in.name == name {
			return true
		}
	}
	return false
}

// hidden returns the hidden inputs as form values.
func (p *page) hidden() url.Values {
	v := url.Values{}
	for _, in := range p.inputs {
		if in.typ == "hidden" && in.name != "" {
			v.Add(in.name, in.value)
		}
	}
	return v
}

func (p *page) hiddenValue(name string) string {
	return p.hidden().Get(name)
}

// opError is the text of the page's error elements, if any.
func (p *page) opError() string {
	return strings.Join(p.errors, "; ")
}
