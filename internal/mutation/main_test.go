package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func src(rel, text string) source {
	return source{rel: rel, text: []byte(text), code: blankComments([]byte(text))}
}

func TestBlankCommentsKeepsOffsetsAndStrings(t *testing.T) {
	in := "a := \"// not a comment\" // trailing note\n/* block\n x */ b := `/* raw */` + '/'\n"
	out := string(blankComments([]byte(in)))
	if len(out) != len(in) || strings.Count(out, "\n") != strings.Count(in, "\n") {
		t.Fatalf("offsets or lines changed:\n%q\n%q", in, out)
	}
	for _, gone := range []string{"trailing note", "block", " x */"} {
		if strings.Contains(out, gone) {
			t.Errorf("comment text %q left in %q", gone, out)
		}
	}
	for _, kept := range []string{`"// not a comment"`, "`/* raw */`", "'/'", "b :="} {
		if !strings.Contains(out, kept) {
			t.Errorf("code %q blanked in %q", kept, out)
		}
	}
}

func TestLocate(t *testing.T) {
	files := []source{
		src("a.go", "package a\n\n// check(x) in a comment is no target\nfunc f() {\n\tif !check(x) {\n\t}\n}\n"),
		src("sub/b.go", "package sub\n\nfunc g() {\n\tif !check(y) {\n\t}\n}\n\nfunc h() {\n\tif !check(y) {\n\t}\n}\n"),
	}
	tg, err := locate(mutant{Name: "one", Find: `!check\(x\)`}, files)
	if err != nil || tg.file != "a.go" || tg.line != 5 || tg.pkg != "." {
		t.Fatalf("locate = %+v, %v", tg, err)
	}
	_, err = locate(mutant{Name: "gone", Find: `!check\(z\)`}, files)
	if !errors.Is(err, errNotFound) {
		t.Fatalf("want not found, got %v", err)
	}
	_, err = locate(mutant{Name: "two", Find: `!check\(y\)`}, files)
	if !errors.Is(err, errAmbiguous) || !strings.Contains(err.Error(), "sub/b.go:4") || !strings.Contains(err.Error(), "sub/b.go:9") {
		t.Fatalf("want ambiguous naming both places, got %v", err)
	}
	tg, err = locate(mutant{Name: "in", Find: `!check\(y\)`, In: `func h\(`}, files)
	if err != nil || tg.file != "sub/b.go" || tg.line != 9 || tg.pkg != "./sub" {
		t.Fatalf("locate with In = %+v, %v", tg, err)
	}
	_, err = locate(mutant{Name: "in-gone", Find: `!check\(y\)`, In: `func k\(`}, files)
	if !errors.Is(err, errNotFound) {
		t.Fatalf("want not found with In, got %v", err)
	}
}

func TestReplacementAndEdits(t *testing.T) {
	text := []byte("package a\n\nfunc f(a, b string) bool {\n\treturn a != b\n}\n")
	files := []source{{rel: "a.go", text: text, code: blankComments(text)}}
	m := mutant{Name: "neq", Find: `(\w+) != (\w+)`, Replace: "!MUTANT && $1 != $2"}
	tg, err := locate(m, files)
	if err != nil {
		t.Fatal(err)
	}
	repl, err := replacement(m, tg, text)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(repl), `!oxdMutationActive("neq") && a != b`; got != want {
		t.Fatalf("replacement = %q, want %q", got, want)
	}
	out, err := applyEdits(text, []edit{{tg.start, tg.end, repl, m.Name}})
	if err != nil || !strings.Contains(string(out), "\treturn !oxdMutationActive(\"neq\") && a != b\n") {
		t.Fatalf("applyEdits = %q, %v", out, err)
	}
	if _, err := replacement(mutant{Name: "always", Find: m.Find, Replace: "false"}, tg, text); err == nil {
		t.Fatal("a Replace without MUTANT must be refused")
	}
	if _, err := applyEdits(text, []edit{{10, 20, nil, "x"}, {15, 25, nil, "y"}}); err == nil {
		t.Fatal("overlapping edits must be refused")
	}
}

func TestClassify(t *testing.T) {
	exitErr := func() error {
		err := exec.Command("sh", "-c", "exit 1").Run()
		if err == nil {
			t.Fatal("sh exit 1 succeeded")
		}
		return err
	}()
	for _, tc := range []struct {
		name, out string
		err       error
		status    string
	}{
		{"passes", "ok  \tgithub.com/x/a\t0.1s\n", nil, "MISSED"},
		{"selects nothing", "ok  \tgithub.com/x/a\t0.1s [no tests to run]\n", nil, "NO TESTS"},
		{"selects nothing in one of two packages", "ok  \tgithub.com/x/a\t0.1s [no tests to run]\nok  \tgithub.com/x/b\t0.1s\n", nil, "MISSED"},
		{"fails", "--- FAIL: TestA (0.0s)\n    --- FAIL: TestA/b (0.0s)\nFAIL\n", exitErr, "caught"},
		{"does not compile", "# github.com/x/a\n./a.go:3:1: syntax error\nFAIL\tgithub.com/x/a [build failed]\n", exitErr, "BROKEN"},
	} {
		r := &result{m: mutant{Name: tc.name, Run: "^TestA$"}}
		classify(r, tc.out, tc.err)
		if r.status != tc.status {
			t.Errorf("%s: status %q (%s), want %q", tc.name, r.status, r.detail, tc.status)
		}
		if tc.status == "caught" && r.detail != "by TestA" {
			t.Errorf("%s: detail %q, want the failing test once", tc.name, r.detail)
		}
	}
}

// TestEveryMutantHasASwitch: every mutant of the table can be switched
// off (its Replace uses MUTANT), so the baseline runs the original code.
func TestEveryMutantHasASwitch(t *testing.T) {
	names := map[string]bool{}
	for _, m := range mutants {
		if names[m.Name] {
			t.Errorf("mutant name %q used twice", m.Name)
		}
		names[m.Name] = true
		if !strings.Contains(m.Replace, "MUTANT") || m.Check == "" || m.Mutation == "" || len(m.Pkgs) == 0 || m.Run == "" {
			t.Errorf("mutant %q is incomplete: %+v", m.Name, m)
		}
	}
}
