// Command mutation proves that the security tests guard something: for each
// security check of the list in mutants.go it disables the check, runs the
// tests that guard it, and requires them to fail.
//
//	go run ./internal/mutation            # from the repository root
//	go run ./internal/mutation -list      # only locate every target
//	go run ./internal/mutation -only 'nonce|pat-'
//
// The real tree is never modified. The module is copied to a temporary
// directory, and every mutant is written into the copy at once, each behind
// a switch: the mutant's replacement code tests oxdMutationActive("name"),
// a function added to the copy only, which is true when the environment
// variable OXD_MUTATION_ACTIVE names the mutant. Each test package is thus
// compiled once; the selected tests first run with no mutant active (they
// must pass: the switches change nothing), then once per mutant with that
// mutant active (they must fail).
//
// A target is found by a regular expression matched against the code of
// every non-test Go file of the module (comments blanked out, nested
// modules and testdata left out), never by file name or line number, so it
// follows code that moves between files. It must match exactly once:
// no match ("target not found") or several ("target ambiguous") is
// reported as such and fails the run, as does a mutant that does not
// compile (BROKEN), a test selection that runs no test (NO TESTS) and a
// mutant no test notices (MISSED).
//
// Exit status: 0 when every mutant was caught, 1 otherwise, 2 on a usage or
// setup error.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// mutant disables one security check.
type mutant struct {
	// Name is a short identifier (for -only).
	Name string
	// Check names the security check that the mutant disables.
	Check string
	// Mutation says in a few words what the mutant does.
	Mutation string
	// Find is a regular expression that must match exactly once in the
	// code of the module's non-test Go files.
	Find string
	// In, when set, is a regular expression the first line of the
	// enclosing top-level function ("func …") must match: it tells apart
	// two copies of one pattern in different functions.
	In string
	// Replace is the replacement of the match (regexp.Expand syntax: $0 is
	// the whole match, $1… the groups). It must contain MUTANT, a boolean
	// expression that is true when this mutant is active, and behave as the
	// original code when MUTANT is false.
	Replace string
	// Pkgs are the test packages to run, relative to the module root; "."
	// is the package that holds the target, wherever it lives.
	Pkgs []string
	// Run is the -run expression that selects the guarding tests.
	Run string
}

// target is where a mutant applies.
type target struct {
	file       string // relative to the module root, slash-separated
	line       int
	start, end int // byte offsets of the match in the file
	pkg        string
}

// result of one mutant.
type result struct {
	m        mutant
	t        *target
	status   string // caught, MISSED, NOT FOUND, AMBIGUOUS, BROKEN, NO TESTS, ERROR
	detail   string
	duration time.Duration
	output   string
}

func (r result) ok() bool { return r.status == "caught" }

func main() {
	list := flag.Bool("list", false, "only locate every target and print where it is")
	only := flag.String("only", "", "run only the mutants whose name matches this regular expression")
	verbose := flag.Bool("v", false, "print the test output of every mutant that was not caught")
	keep := flag.Bool("keep", false, "keep the temporary copy of the module")
	timeout := flag.Duration("timeout", 3*time.Minute, "go test -timeout for one mutant")
	flag.Parse()
	start := time.Now()

	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		os.Exit(2)
	}
	ms := mutants
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mutation: -only:", err)
			os.Exit(2)
		}
		ms = slices.DeleteFunc(slices.Clone(ms), func(m mutant) bool { return !re.MatchString(m.Name) })
	}
	if len(ms) == 0 {
		fmt.Fprintln(os.Stderr, "mutation: no mutant selected")
		os.Exit(2)
	}
	files, err := sourceFiles(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		os.Exit(2)
	}

	results := make([]result, len(ms))
	located := 0
	for i, m := range ms {
		results[i].m = m
		t, err := locate(m, files)
		switch {
		case errors.Is(err, errNotFound):
			results[i].status, results[i].detail = "NOT FOUND", "mutation "+m.Name+": target not found: "+err.Error()
		case errors.Is(err, errAmbiguous):
			results[i].status, results[i].detail = "AMBIGUOUS", "mutation "+m.Name+": "+err.Error()
		case err != nil:
			results[i].status, results[i].detail = "ERROR", "mutation "+m.Name+": "+err.Error()
		default:
			results[i].t = t
			located++
		}
	}
	for _, r := range results {
		if r.t == nil && !*list {
			fmt.Println(r.detail)
		}
	}
	if *list {
		for _, r := range results {
			if r.t != nil {
				fmt.Printf("%-22s %s:%d (tests: %s -run '%s')\n", r.m.Name, r.t.file, r.t.line, strings.Join(testPkgs(r.m, r.t), " "), r.m.Run)
			} else {
				fmt.Printf("%-22s %s\n", r.m.Name, r.detail)
			}
		}
		if located != len(results) {
			os.Exit(1)
		}
		return
	}

	tmp, err := os.MkdirTemp("", "oxd-mutation-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		os.Exit(2)
	}
	cleanup := func() {
		if !*keep {
			os.RemoveAll(tmp)
		}
	}
	if *keep {
		fmt.Println("mutation: temporary copy kept in", tmp)
	} else {
		// Interrupted: remove the copy (the go commands get the signal too).
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		go func() {
			s := <-sig
			os.RemoveAll(tmp)
			fmt.Fprintln(os.Stderr, "mutation: interrupted by", s)
			os.Exit(2)
		}()
	}
	if err := copyModule(root, tmp); err != nil {
		fmt.Fprintln(os.Stderr, "mutation: copying the module:", err)
		cleanup()
		os.Exit(2)
	}

	if located > 0 {
		// Write every located mutant into the copy; set aside those that
		// do not compile.
		bs := time.Now()
		if err := prepare(tmp, results, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, "mutation:", err)
			cleanup()
			os.Exit(2)
		}
		// Baseline: with no mutant active every selection passes.
		pkgs, run := baselineSelection(results)
		if len(pkgs) > 0 {
			out, err := goTest(tmp, pkgs, run, "", *timeout, false)
			if err != nil {
				fmt.Print(out)
				fmt.Fprintf(os.Stderr, "mutation: with no mutant active the selected tests fail (%s -run '%s'): %v\n", strings.Join(pkgs, " "), run, err)
				cleanup()
				os.Exit(1)
			}
			fmt.Printf("mutation: baseline: with no mutant active the selected tests pass (%s, compiling included)\n", time.Since(bs).Round(100*time.Millisecond))
		}
	}

	for i := range results {
		r := &results[i]
		if r.t == nil || r.status != "" {
			continue
		}
		ms := time.Now()
		out, err := goTest(tmp, testPkgs(r.m, r.t), r.m.Run, r.m.Name, *timeout, true)
		r.duration = time.Since(ms)
		r.output = out
		classify(r, out, err)
		fmt.Printf("mutation: %-20s %s %s (%s)\n", r.m.Name, r.status, r.detail, r.duration.Round(100*time.Millisecond))
	}

	failed := report(os.Stdout, results)
	if *verbose {
		for _, r := range results {
			if !r.ok() && r.output != "" {
				fmt.Printf("\n--- output of mutant %s:\n%s\n", r.m.Name, r.output)
			}
		}
	}
	fmt.Printf("mutation: %d mutants, %d caught, %d not, in %s\n", len(results), len(results)-failed, failed, time.Since(start).Round(time.Second))
	cleanup()
	if failed > 0 {
		os.Exit(1)
	}
}

// moduleRoot is the directory of the main module (go env GOMOD).
func moduleRoot() (string, error) {
	cmd := exec.Command("go", "env", "GOMOD")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module (run from the repository root)")
	}
	return filepath.Dir(gomod), nil
}

// source is one non-test Go file of the module, with its code view:
// comments replaced by spaces (newlines kept), so that offsets match.
type source struct {
	rel  string
	text []byte
	code []byte
}

// walkModule calls fn for every file of the module rooted at root: nested
// modules, .git, node_modules and vendor are left out.
func walkModule(root string, fn func(path, rel string, d fs.DirEntry) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == "." {
				return fn(path, rel, d)
			}
			switch d.Name() {
			case ".git", "node_modules", "vendor":
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		return fn(path, filepath.ToSlash(rel), d)
	})
}

func sourceFiles(root string) ([]source, error) {
	var out []source
	err := walkModule(root, func(path, rel string, d fs.DirEntry) error {
		if d.IsDir() {
			if d.Name() == "testdata" || rel == selfDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, source{rel: rel, text: b, code: blankComments(b)})
		return nil
	})
	return out, err
}

// blankComments returns a copy of src with the bytes of every comment
// replaced by spaces (newlines kept). Strings, raw strings and runes are
// skipped over so that "//" inside them is not taken for a comment.
func blankComments(src []byte) []byte {
	b := bytes.Clone(src)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"', '\'':
			q := b[i]
			for i++; i < len(b) && b[i] != q && b[i] != '\n'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '`':
			for i++; i < len(b) && b[i] != '`'; i++ {
			}
		case '/':
			if i+1 >= len(b) {
				continue
			}
			switch b[i+1] {
			case '/':
				for ; i < len(b) && b[i] != '\n'; i++ {
					b[i] = ' '
				}
			case '*':
				j := bytes.Index(b[i+2:], []byte("*/"))
				end := len(b)
				if j >= 0 {
					end = i + 2 + j + 2
				}
				for ; i < end; i++ {
					if b[i] != '\n' {
						b[i] = ' '
					}
				}
				i--
			}
		}
	}
	return b
}

// selfDir is this command's directory: its table of patterns is not a
// target.
const selfDir = "internal/mutation"

var (
	errNotFound  = errors.New("no match")
	errAmbiguous = errors.New("target ambiguous")
)

// locate finds the one place m.Find matches.
func locate(m mutant, files []source) (*target, error) {
	re, err := regexp.Compile(m.Find)
	if err != nil {
		return nil, fmt.Errorf("bad Find expression: %w", err)
	}
	var in *regexp.Regexp
	if m.In != "" {
		if in, err = regexp.Compile(m.In); err != nil {
			return nil, fmt.Errorf("bad In expression: %w", err)
		}
	}
	var found []*target
	for _, f := range files {
		for _, loc := range re.FindAllIndex(f.code, -1) {
			if in != nil && !in.Match(enclosingFunc(f.code, loc[0])) {
				continue
			}
			dir := "."
			if i := strings.LastIndex(f.rel, "/"); i >= 0 {
				dir = "./" + f.rel[:i]
			}
			found = append(found, &target{
				file: f.rel, line: 1 + bytes.Count(f.text[:loc[0]], []byte("\n")),
				start: loc[0], end: loc[1], pkg: dir,
			})
		}
	}
	switch len(found) {
	case 0:
		if m.In != "" {
			return nil, fmt.Errorf("%w for %q in a function matching %q in the module's non-test Go files (the check moved or changed: re-point the mutant in internal/mutation/mutants.go)", errNotFound, m.Find, m.In)
		}
		return nil, fmt.Errorf("%w for %q in the module's non-test Go files (the check moved or changed: re-point the mutant in internal/mutation/mutants.go)", errNotFound, m.Find)
	case 1:
		return found[0], nil
	}
	var where []string
	for _, t := range found {
		where = append(where, fmt.Sprintf("%s:%d", t.file, t.line))
	}
	return nil, fmt.Errorf("%w: %q matches %d places (%s); make it match one", errAmbiguous, m.Find, len(found), strings.Join(where, ", "))
}

// enclosingFunc is the first line of the top-level function declaration
// (a line starting with "func ") before offset off of code, or nil.
func enclosingFunc(code []byte, off int) []byte {
	for i := off; i >= 0; i-- {
		if (i == 0 || code[i-1] == '\n') && bytes.HasPrefix(code[i:], []byte("func ")) {
			line := code[i:]
			if j := bytes.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			return line
		}
	}
	return nil
}

// activeEnv is the environment variable that names the active mutant.
const activeEnv = "OXD_MUTATION_ACTIVE"

// switchFile is added to every package of the copy that holds a target.
const switchFile = "zz_oxd_mutation.go"

// replacement is the code that replaces t's match in text: m.Replace
// expanded, with MUTANT turned into the mutant's switch.
func replacement(m mutant, t *target, text []byte) ([]byte, error) {
	if !strings.Contains(m.Replace, "MUTANT") {
		return nil, errors.New("its Replace has no MUTANT: the mutant would always be active")
	}
	re, err := regexp.Compile(m.Find)
	if err != nil {
		return nil, err
	}
	code := blankComments(text)
	loc := re.FindSubmatchIndex(code[t.start:t.end])
	if loc == nil || loc[0] != 0 || loc[1] != t.end-t.start {
		return nil, fmt.Errorf("the target at %s:%d changed while running", t.file, t.line)
	}
	for i := range loc {
		if loc[i] >= 0 {
			loc[i] += t.start
		}
	}
	tmpl := strings.ReplaceAll(m.Replace, "MUTANT", fmt.Sprintf("oxdMutationActive(%q)", m.Name))
	return re.Expand(nil, []byte(tmpl), code, loc), nil
}

// edit replaces text[start:end] with repl.
type edit struct {
	start, end int
	repl       []byte
	name       string
}

// applyEdits applies non-overlapping edits to text.
func applyEdits(text []byte, edits []edit) ([]byte, error) {
	edits = slices.Clone(edits)
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	var out []byte
	last := 0
	for _, e := range edits {
		if e.start < last {
			return nil, fmt.Errorf("mutant %s overlaps another mutant", e.name)
		}
		out = append(out, text[last:e.start]...)
		out = append(out, e.repl...)
		last = e.end
	}
	return append(out, text[last:]...), nil
}

var packageClause = regexp.MustCompile(`(?m)^package (\w+)`)

// switchSource is the file that defines oxdMutationActive in package pkg.
func switchSource(pkg string) []byte {
	return []byte(fmt.Sprintf(`// Code generated by internal/mutation in a temporary copy. DO NOT EDIT.

package %s

import "os"

func oxdMutationActive(name string) bool { return os.Getenv(%q) == name }
`, pkg, activeEnv))
}

// writeMutants restores the copy's targeted files from the originals and
// writes the mutants of results for which use is true.
func writeMutants(dir string, results []result, use func(*result) bool) error {
	type fileEdits struct {
		orig  []byte
		edits []edit
	}
	files := map[string]*fileEdits{}
	pkgs := map[string]string{} // package dir -> package name
	for i := range results {
		r := &results[i]
		if r.t == nil {
			continue
		}
		path := filepath.Join(dir, filepath.FromSlash(r.t.file))
		fe := files[path]
		if fe == nil {
			orig, err := os.ReadFile(path + ".orig")
			if errors.Is(err, fs.ErrNotExist) {
				if orig, err = os.ReadFile(path); err == nil {
					err = os.WriteFile(path+".orig", orig, 0o644)
				}
			}
			if err != nil {
				return err
			}
			fe = &fileEdits{orig: orig}
			files[path] = fe
		}
		if !use(r) {
			continue
		}
		repl, err := replacement(r.m, r.t, fe.orig)
		if err != nil {
			return fmt.Errorf("mutation %s: %w", r.m.Name, err)
		}
		fe.edits = append(fe.edits, edit{r.t.start, r.t.end, repl, r.m.Name})
		m := packageClause.FindSubmatch(blankComments(fe.orig))
		if m == nil {
			return fmt.Errorf("mutation %s: no package clause in %s", r.m.Name, r.t.file)
		}
		pkgs[filepath.Dir(path)] = string(m[1])
	}
	for path, fe := range files {
		out, err := applyEdits(fe.orig, fe.edits)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			return err
		}
		_ = os.Remove(filepath.Join(filepath.Dir(path), switchFile))
	}
	for d, name := range pkgs {
		if err := os.WriteFile(filepath.Join(d, switchFile), switchSource(name), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// prepare writes every located mutant into the copy at dir. When the
// result does not compile, each mutant is compiled alone and those that
// do not compile are marked BROKEN and left out.
func prepare(dir string, results []result, timeout time.Duration) error {
	all := func(r *result) bool { return r.status == "" }
	if err := writeMutants(dir, results, all); err != nil {
		return err
	}
	var pkgs []string
	for _, r := range results {
		if r.t != nil && !slices.Contains(pkgs, r.t.pkg) {
			pkgs = append(pkgs, r.t.pkg)
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	fmt.Printf("mutation: compiling %s with every mutant switched in\n", strings.Join(pkgs, " "))
	_, err := goBuild(dir, pkgs, timeout)
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("compiling the mutants: %w", err)
	}
	fmt.Println("mutation: the mutants do not compile together; compiling each alone")
	for i := range results {
		r := &results[i]
		if r.t == nil {
			continue
		}
		if err := writeMutants(dir, results, func(x *result) bool { return x == r }); err != nil {
			return err
		}
		out, err := goBuild(dir, []string{r.t.pkg}, timeout)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			r.status, r.detail = "ERROR", "compiling the mutant timed out"
		case err != nil:
			r.status, r.detail, r.output = "BROKEN", "the mutant does not compile: fix its Replace", out
		}
	}
	return writeMutants(dir, results, all)
}

// goBuild compiles pkgs in the copy at dir. The time limit is generous (a
// cold build cache on a loaded machine is slow); running out of it is an
// error wrapping context.DeadlineExceeded, not a compile error.
func goBuild(dir string, pkgs []string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-trimpath", "-o", os.DevNull}, pkgs...)...)
	cmd.Dir = dir
	cmd.Env = goEnv("")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("go build %s: %w", strings.Join(pkgs, " "), ctx.Err())
	}
	return string(out), err
}

func testPkgs(m mutant, t *target) []string {
	var out []string
	for _, p := range m.Pkgs {
		if p == "." {
			p = t.pkg
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// baselineSelection is every package and test name the located mutants
// select.
func baselineSelection(results []result) ([]string, string) {
	var pkgs, runs []string
	for _, r := range results {
		if r.t == nil || r.status != "" {
			continue
		}
		for _, p := range testPkgs(r.m, r.t) {
			if !slices.Contains(pkgs, p) {
				pkgs = append(pkgs, p)
			}
		}
		if !slices.Contains(runs, r.m.Run) {
			runs = append(runs, r.m.Run)
		}
	}
	return pkgs, "(?:" + strings.Join(runs, ")|(?:") + ")"
}

// copyModule copies the module at root (without nested modules, .git,
// node_modules and the workspace files) to dst.
func copyModule(root, dst string) error {
	return walkModule(root, func(path, rel string, d fs.DirEntry) error {
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if rel == "go.work" || rel == "go.work.sum" || !d.Type().IsRegular() {
			return nil
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		info, err := src.Stat()
		if err != nil {
			return err
		}
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// goEnv is the environment of the go commands run in the copy: outside
// the workspace, with active naming the active mutant ("" for none).
func goEnv(active string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, activeEnv+"=") || strings.HasPrefix(kv, "GOWORK=")
	})
	env = append(env, "GOWORK=off")
	if active != "" {
		env = append(env, activeEnv+"="+active)
	}
	return env
}

// goTest runs go test in dir (the copy) on pkgs with the -run expression
// and the mutant active (none when active is "").
func goTest(dir string, pkgs []string, run, active string, timeout time.Duration, failfast bool) (string, error) {
	// -trimpath keeps the build cache keys free of the copy's directory:
	// the packages no mutant touches are compiled once across runs.
	args := []string{"test", "-trimpath", "-count=1", "-vet=off", "-timeout", timeout.String(), "-run", run}
	if failfast {
		args = append(args, "-failfast")
	}
	args = append(args, pkgs...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = goEnv(active)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("go test: %w", ctx.Err())
	}
	return string(out), err
}

var (
	failLine  = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)
	buildFail = regexp.MustCompile(`(?m)\[(build|setup) failed\]|^# `)
	okLine    = regexp.MustCompile(`(?m)^ok\s.*$`)
)

// ranTests reports whether go test ran a test in some package: an "ok"
// line without "[no tests to run]".
func ranTests(out string) bool {
	for _, l := range okLine.FindAllString(out, -1) {
		if !strings.Contains(l, "[no tests to run]") {
			return true
		}
	}
	return false
}

func classify(r *result, out string, err error) {
	var exit *exec.ExitError
	switch {
	case err == nil && !ranTests(out):
		r.status, r.detail = "NO TESTS", fmt.Sprintf("-run '%s' selects no test: re-point the mutant", r.m.Run)
	case err == nil:
		r.status, r.detail = "MISSED", "every selected test passes with the check disabled"
	case buildFail.MatchString(out):
		r.status, r.detail = "BROKEN", "the mutant does not compile: fix its Replace"
	case errors.As(err, &exit):
		var names []string
		for _, m := range failLine.FindAllStringSubmatch(out, -1) {
			if n := m[1]; !slices.ContainsFunc(names, func(s string) bool { return strings.HasPrefix(n, s+"/") || s == n }) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			r.status, r.detail = "caught", "(the test binary failed)"
			if strings.Contains(out, "panic: test timed out") {
				r.status, r.detail = "ERROR", "the tests timed out"
			}
			return
		}
		r.status, r.detail = "caught", "by "+strings.Join(names, ", ")
	default:
		r.status, r.detail = "ERROR", err.Error()
	}
}

// report prints the table and returns the number of mutants not caught.
func report(w io.Writer, results []result) int {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tMUTATION\tTARGET\tRESULT\tTIME\tDETAIL")
	failed := 0
	for _, r := range results {
		where := "-"
		if r.t != nil {
			where = fmt.Sprintf("%s:%d", r.t.file, r.t.line)
		}
		if !r.ok() {
			failed++
		}
		detail := r.detail
		if r.ok() && len(detail) > 160 {
			detail = detail[:157] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.m.Check, r.m.Mutation, where, r.status, r.duration.Round(100*time.Millisecond), detail)
	}
	tw.Flush()
	return failed
}
