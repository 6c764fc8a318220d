package core

// This file enforces that package core stays a deterministic, single-threaded
// state machine: the simulator replays a run from its seed, which only works if
// nothing in core reads the clock, the OS, global randomness, the scheduler or
// map iteration order.
//
// The checker is scanDeterminism. It uses go/types information when it is
// available and falls back to syntactic heuristics where it is not (type-check
// failure, or a file excluded by build constraints).

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// orderIndependentMarker, in a comment on the line above a `for ... range`
// over a map (or at the end of the `for` line), declares that the loop's
// effect does not depend on iteration order.
const orderIndependentMarker = "order-independent"

// forbiddenImports maps an import path to the reason it is banned from core.
var forbiddenImports = map[string]string{
	"math/rand":    "randomness must come from the seeded core.Rand",
	"math/rand/v2": "randomness must come from the seeded core.Rand",
	"crypto/rand":  "randomness must come from the seeded core.Rand",
	"hash/maphash": "its seed is random per process",
	"sync":         "core is single-threaded",
	"sync/atomic":  "core is single-threaded",
	"os":           "I/O belongs outside core",
	"os/exec":      "I/O belongs outside core",
	"io/ioutil":    "I/O belongs outside core",
	"net":          "I/O belongs outside core",
	"syscall":      "I/O belongs outside core",
	"plugin":       "I/O belongs outside core",
	"reflect":      "reflection is not allowed in core",
	"unsafe":       "unsafe is not allowed in core",
	"runtime":      "scheduler and runtime state are not deterministic",
}

// forbiddenImportPrefixes bans whole subtrees (net/http, os/signal, runtime/debug, ...).
var forbiddenImportPrefixes = map[string]string{
	"net/":     "I/O belongs outside core",
	"os/":      "I/O belongs outside core",
	"runtime/": "scheduler and runtime state are not deterministic",
}

// forbiddenTimeFuncs are the package-level functions of "time" that read the
// wall clock or create timers. Everything else in "time" (Duration, Time
// arithmetic, ...) is allowed.
var forbiddenTimeFuncs = map[string]bool{
	"Now": true, "Since": true, "Until": true, "After": true, "AfterFunc": true,
	"Sleep": true, "Tick": true, "NewTimer": true, "NewTicker": true,
}

// mapIterFuncs are the functions of "maps" whose iterators yield in map order.
var mapIterFuncs = map[string]bool{"Keys": true, "Values": true, "All": true}

// sortingFuncs are the functions of "slices" that make an iterator's order irrelevant.
var sortingFuncs = map[string]bool{"Sorted": true, "SortedFunc": true, "SortedStableFunc": true}

func forbiddenImportReason(p string) (string, bool) {
	if r, ok := forbiddenImports[p]; ok {
		return r, true
	}
	for prefix, r := range forbiddenImportPrefixes { // order-independent: at most one prefix matches
		if strings.HasPrefix(p, prefix) {
			return r, true
		}
	}
	return "", false
}

// TestCoreIsDeterministic scans every non-test .go file of package core.
func TestCoreIsDeterministic(t *testing.T) {
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// core and every package below it (core/hist, core/qos, ...) run inside the state machine.
	dirs := []string{root}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "testdata" {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkDeterministicDir(t, root, dir) })
	}
}

func checkDeterministicDir(t *testing.T, root, dir string) {
	fset := token.NewFileSet()
	files, buildable := parseCoreDir(t, fset, dir)
	if len(files) == 0 {
		t.Fatalf("no non-test .go files found in %s", dir)
	}

	info, typeErr := typeCheckFiles(fset, dir, buildable)
	if typeErr != nil {
		t.Logf("type-checking core failed (%v); range-over-map detection falls back to syntactic heuristics where types are unknown", typeErr)
	}
	if len(buildable) < len(files) {
		t.Logf("%d file(s) excluded by build constraints are checked syntactically only", len(files)-len(buildable))
	}

	for _, f := range scanDeterminism(fset, files, info) {
		// Positions are reported relative to core (file.go:line:col).
		t.Error(strings.TrimPrefix(f, root+string(filepath.Separator)))
	}
}

// parseCoreDir parses the non-test Go files in dir. It returns all of them and
// the subset that the current build configuration would compile.
func parseCoreDir(t *testing.T, fset *token.FileSet, dir string) (all, buildable []*ast.File) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") ||
			strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			t.Fatalf("parsing %s: %v", name, err)
		}
		all = append(all, f)
		if ok, err := build.Default.MatchFile(dir, name); err == nil && ok {
			buildable = append(buildable, f)
		}
	}
	return all, buildable
}

// typeCheckFiles type-checks files, continuing past errors so that whatever
// could be typed is recorded. It returns the first error, if any.
func typeCheckFiles(fset *token.FileSet, dir string, files []*ast.File) (*types.Info, error) {
	info := &types.Info{
		Types: map[ast.Expr]types.TypeAndValue{},
		Defs:  map[*ast.Ident]types.Object{},
		Uses:  map[*ast.Ident]types.Object{},
	}
	if len(files) == 0 {
		return info, fmt.Errorf("no buildable files")
	}
	var firstErr error
	conf := types.Config{
		Importer: exportDataImporter(fset, dir),
		Error: func(err error) {
			if firstErr == nil {
				firstErr = err
			}
		},
	}
	_, _ = conf.Check(files[0].Name.Name, fset, files, info)
	return info, firstErr
}

// exportDataImporter returns a gc importer fed with the export data that
// `go list -export` reports for dir's dependencies, which covers module
// dependencies as well as the standard library. importer.Default() alone only
// finds standard-library packages in module mode, so it is the fallback.
func exportDataImporter(fset *token.FileSet, dir string) types.Importer {
	cmd := exec.Command("go", "list", "-e", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}", ".")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return importer.Default()
	}
	exports := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if p, file, ok := strings.Cut(line, "\t"); ok && file != "" {
			exports[p] = file
		}
	}
	fallback := importer.Default()
	gc := importer.ForCompiler(fset, "gc", func(p string) (io.ReadCloser, error) {
		file, ok := exports[p]
		if !ok {
			return nil, fmt.Errorf("no export data for %q", p)
		}
		return os.Open(file)
	})
	return importerFunc(func(p string) (*types.Package, error) {
		pkg, err := gc.Import(p)
		if err != nil {
			if pkg2, err2 := fallback.Import(p); err2 == nil {
				return pkg2, nil
			}
		}
		return pkg, err
	})
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// scanDeterminism reports, as "file:line:col: message", every construct in
// files that can make core nondeterministic. info may be nil or partial; where
// it lacks a type the checks fall back to syntax.
func scanDeterminism(fset *token.FileSet, files []*ast.File, info *types.Info) []string {
	c := &detChecker{fset: fset, info: info, syn: newSynIndex(files), seen: map[string]bool{}}
	for _, f := range files {
		c.file(f)
	}
	sort.SliceStable(c.findings, func(i, j int) bool {
		a, b := c.findings[i].pos, c.findings[j].pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	out := make([]string, 0, len(c.findings))
	for _, f := range c.findings {
		out = append(out, f.pos.String()+": "+f.msg)
	}
	return out
}

type detFinding struct {
	pos token.Position
	msg string
}

type detChecker struct {
	fset     *token.FileSet
	info     *types.Info
	syn      *synIndex
	findings []detFinding
	seen     map[string]bool

	// per file
	imports  map[string]string // local name -> import path
	comments map[int][]string  // line a comment group ends on -> its texts
}

func (c *detChecker) report(pos token.Pos, format string, args ...any) {
	p := c.fset.Position(pos)
	msg := fmt.Sprintf(format, args...)
	key := p.String() + msg
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.findings = append(c.findings, detFinding{p, msg})
}

func (c *detChecker) file(f *ast.File) {
	c.imports = map[string]string{}
	c.comments = map[int][]string{}
	for _, cg := range f.Comments {
		line := c.fset.Position(cg.End()).Line
		c.comments[line] = append(c.comments[line], cg.Text())
	}

	for _, spec := range f.Imports {
		p, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			continue
		}
		name := path.Base(p)
		if p == "math/rand/v2" {
			name = "rand"
		}
		if spec.Name != nil {
			name = spec.Name.Name
		}
		c.imports[name] = p
		if reason, bad := forbiddenImportReason(p); bad {
			c.report(spec.Pos(), "import of %q is forbidden in core: %s", p, reason)
		}
		if p == "time" && name == "." {
			c.report(spec.Pos(), `dot-import of "time" is forbidden in core: it hides wall-clock calls`)
		}
	}

	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		var parent ast.Node
		if len(stack) > 0 {
			parent = stack[len(stack)-1]
		}
		stack = append(stack, n)
		c.node(n, parent)
		return true
	})
}

func (c *detChecker) node(n, parent ast.Node) {
	switch n := n.(type) {
	case *ast.GoStmt:
		c.report(n.Pos(), "go statement is forbidden in core: core is single-threaded")
	case *ast.SelectStmt:
		c.report(n.Pos(), "select statement is forbidden in core: core is single-threaded")
	case *ast.ChanType:
		c.report(n.Pos(), "channel type is forbidden in core: core is single-threaded")
	case *ast.SendStmt:
		c.report(n.Pos(), "channel send is forbidden in core: core is single-threaded")
	case *ast.UnaryExpr:
		if n.Op == token.ARROW {
			c.report(n.Pos(), "channel receive is forbidden in core: core is single-threaded")
		}
	case *ast.Ident:
		if pkg, name, ok := c.pkgFunc(n, parent); ok {
			if pkg == "time" && forbiddenTimeFuncs[name] {
				c.report(n.Pos(), "time.%s is forbidden in core: it reads the wall clock or starts a timer; take time as an input", name)
			}
		}
	case *ast.CallExpr:
		c.mapsIterCall(n, parent)
	case *ast.RangeStmt:
		c.rangeStmt(n, parent)
	}
}

// pkgFunc reports whether id denotes a package-level function of another
// package (as the Sel of pkg.F, or bare via a dot-import), and which.
func (c *detChecker) pkgFunc(id *ast.Ident, parent ast.Node) (pkgPath, name string, ok bool) {
	if c.info != nil {
		if obj, known := c.info.Uses[id]; known {
			fn, isFunc := obj.(*types.Func)
			if !isFunc || fn.Pkg() == nil {
				return "", "", false
			}
			if sig, _ := fn.Type().(*types.Signature); sig != nil && sig.Recv() != nil {
				return "", "", false // a method, e.g. fakeClock.Now
			}
			return fn.Pkg().Path(), fn.Name(), true
		}
	}
	// Syntactic fallback: id is the Sel of X.Sel where X is an unshadowed import name.
	sel, isSel := parent.(*ast.SelectorExpr)
	if !isSel || sel.Sel != id {
		return "", "", false
	}
	x, isIdent := sel.X.(*ast.Ident)
	if !isIdent || x.Obj != nil { // Obj != nil: a local declaration shadows the import
		return "", "", false
	}
	p, imported := c.imports[x.Name]
	if !imported {
		return "", "", false
	}
	return p, id.Name, true
}

// calleeFunc resolves call.Fun to a package-level function, if it is one.
func (c *detChecker) calleeFunc(call *ast.CallExpr) (pkgPath, name string, ok bool) {
	switch fun := ast.Unparen(call.Fun).(type) {
	case *ast.SelectorExpr:
		return c.pkgFunc(fun.Sel, fun)
	case *ast.Ident:
		return c.pkgFunc(fun, call)
	}
	return "", "", false
}

// mapsIterCall reports maps.Keys/Values/All unless the sequence is sorted
// right away (slices.Sorted(maps.Keys(m))) or marked order-independent.
func (c *detChecker) mapsIterCall(call *ast.CallExpr, parent ast.Node) {
	pkg, name, ok := c.calleeFunc(call)
	if !ok || pkg != "maps" || !mapIterFuncs[name] {
		return
	}
	if outer, isCall := parent.(*ast.CallExpr); isCall {
		if opkg, oname, ok := c.calleeFunc(outer); ok && opkg == "slices" && sortingFuncs[oname] {
			return
		}
	}
	if c.markedOrderIndependent(c.fset.Position(call.Pos()).Line) {
		return
	}
	c.report(call.Pos(), "maps.%s yields in nondeterministic map order: use slices.Sorted(maps.%s(...)), or put a comment containing %q on the line above", name, name, orderIndependentMarker)
}

func (c *detChecker) rangeStmt(rs *ast.RangeStmt, parent ast.Node) {
	kind := ""
	if t := c.typeOf(rs.X); t != nil {
		switch {
		case hasMapCore(t, 0):
			kind = "map"
		case isChan(t):
			kind = "channel"
		}
	} else if c.syn.isMapExpr(rs.X, 0) {
		kind = "map"
	}
	switch kind {
	case "channel":
		c.report(rs.Pos(), "range over a channel is forbidden in core: core is single-threaded")
	case "map":
		lines := []int{c.fset.Position(rs.Pos()).Line}
		if ls, ok := parent.(*ast.LabeledStmt); ok {
			lines = append(lines, c.fset.Position(ls.Pos()).Line)
		}
		for _, l := range lines {
			if c.markedOrderIndependent(l) {
				return
			}
		}
		c.report(rs.Pos(), "range over map has nondeterministic order: iterate sorted keys, or put a comment containing %q on the line above the for statement", orderIndependentMarker)
	}
}

// markedOrderIndependent reports whether a comment group ending on the line
// above line (or on line itself, i.e. a trailing comment) contains the marker.
func (c *detChecker) markedOrderIndependent(line int) bool {
	for _, l := range []int{line - 1, line} {
		for _, text := range c.comments[l] {
			if strings.Contains(text, orderIndependentMarker) {
				return true
			}
		}
	}
	return false
}

// typeOf returns e's type, or nil if the type checker did not record a valid one.
func (c *detChecker) typeOf(e ast.Expr) types.Type {
	if c.info == nil {
		return nil
	}
	tv, ok := c.info.Types[e]
	if !ok || tv.Type == nil {
		return nil
	}
	if b, isBasic := tv.Type.(*types.Basic); isBasic && b.Kind() == types.Invalid {
		return nil
	}
	return tv.Type
}

// hasMapCore reports whether ranging over a value of type t iterates a map:
// t's underlying type is a map, or t is a type parameter (or constraint) whose
// type set contains a map.
func hasMapCore(t types.Type, depth int) bool {
	if depth > 10 {
		return false
	}
	if tp, ok := types.Unalias(t).(*types.TypeParam); ok {
		return hasMapCore(tp.Constraint(), depth+1)
	}
	switch u := t.Underlying().(type) {
	case *types.Map:
		return true
	case *types.Interface:
		for i := 0; i < u.NumEmbeddeds(); i++ {
			if hasMapCore(u.EmbeddedType(i), depth+1) {
				return true
			}
		}
	case *types.Union:
		for i := 0; i < u.Len(); i++ {
			if hasMapCore(u.Term(i).Type(), depth+1) {
				return true
			}
		}
	}
	return false
}

func isChan(t types.Type) bool {
	if tp, ok := types.Unalias(t).(*types.TypeParam); ok {
		t = tp.Constraint()
	}
	_, ok := t.Underlying().(*types.Chan)
	return ok
}

// synIndex holds package-wide syntactic facts for the map-range fallback.
// Names are matched without scoping, so a name is only trusted when every
// declaration of it agrees (is a map, or is not).
type synIndex struct {
	mapTypes  map[string]bool // package-level type name -> its type is a map
	fields    map[string]tri  // struct field name -> map-ness
	funcs     map[string]tri  // function/method name -> map-ness of its single result
	pkgVars   map[string]tri  // package-level var name -> map-ness
	typeSpecs map[string]ast.Expr
	resolving map[string]bool
}

type tri uint8

const (
	triMap tri = 1 << iota
	triOther
)

func (s *synIndex) add(m map[string]tri, name string, isMap bool) {
	if isMap {
		m[name] |= triMap
	} else {
		m[name] |= triOther
	}
}

func newSynIndex(files []*ast.File) *synIndex {
	s := &synIndex{
		mapTypes:  map[string]bool{},
		fields:    map[string]tri{},
		funcs:     map[string]tri{},
		pkgVars:   map[string]tri{},
		typeSpecs: map[string]ast.Expr{},
		resolving: map[string]bool{},
	}
	for _, f := range files {
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.TYPE {
				for _, sp := range gd.Specs {
					ts := sp.(*ast.TypeSpec)
					s.typeSpecs[ts.Name.Name] = ts.Type
				}
			}
		}
	}
	for name := range s.typeSpecs { // order-independent: fills a set
		s.mapTypes[name] = s.isMapTypeExpr(&ast.Ident{Name: name}, 0)
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.StructType:
				for _, fld := range n.Fields.List {
					for _, nm := range fld.Names {
						s.add(s.fields, nm.Name, s.isMapTypeExpr(fld.Type, 0))
					}
				}
			case *ast.FuncDecl:
				res := n.Type.Results
				single := res != nil && len(res.List) == 1 && len(res.List[0].Names) <= 1
				s.add(s.funcs, n.Name.Name, single && s.isMapTypeExpr(res.List[0].Type, 0))
			}
			return true
		})
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, nm := range vs.Names {
					isMap := false
					if vs.Type != nil {
						isMap = s.isMapTypeExpr(vs.Type, 0)
					} else if len(vs.Values) == len(vs.Names) {
						isMap = s.isMapExpr(vs.Values[i], 0)
					}
					s.add(s.pkgVars, nm.Name, isMap)
				}
			}
		}
	}
	return s
}

// isMapTypeExpr reports whether the type expression e denotes a map type.
func (s *synIndex) isMapTypeExpr(e ast.Expr, depth int) bool {
	if depth > 20 {
		return false
	}
	switch e := e.(type) {
	case *ast.MapType:
		return true
	case *ast.ParenExpr:
		return s.isMapTypeExpr(e.X, depth+1)
	case *ast.IndexExpr: // generic instantiation Set[K]
		return s.isMapTypeExpr(e.X, depth+1)
	case *ast.IndexListExpr:
		return s.isMapTypeExpr(e.X, depth+1)
	case *ast.UnaryExpr: // ~map[K]V in a constraint
		return e.Op == token.TILDE && s.isMapTypeExpr(e.X, depth+1)
	case *ast.BinaryExpr: // union in a constraint
		return e.Op == token.OR && (s.isMapTypeExpr(e.X, depth+1) || s.isMapTypeExpr(e.Y, depth+1))
	case *ast.InterfaceType: // inline constraint interface{ ~map[K]V }
		for _, m := range e.Methods.List {
			if len(m.Names) == 0 && s.isMapTypeExpr(m.Type, depth+1) {
				return true
			}
		}
		return false
	case *ast.Ident:
		if obj := e.Obj; obj != nil {
			switch d := obj.Decl.(type) {
			case *ast.TypeSpec:
				return s.isMapTypeExpr(d.Type, depth+1)
			case *ast.Field: // a type parameter: look at its constraint
				return s.isMapTypeExpr(d.Type, depth+1)
			}
			return false
		}
		if known, ok := s.mapTypes[e.Name]; ok {
			return known
		}
		if s.resolving[e.Name] {
			return false
		}
		if te, ok := s.typeSpecs[e.Name]; ok {
			s.resolving[e.Name] = true
			defer delete(s.resolving, e.Name)
			return s.isMapTypeExpr(te, depth+1)
		}
	}
	return false
}

// isMapExpr reports whether the value expression e is (syntactically) a map.
func (s *synIndex) isMapExpr(e ast.Expr, depth int) bool {
	if depth > 20 {
		return false
	}
	switch e := e.(type) {
	case *ast.ParenExpr:
		return s.isMapExpr(e.X, depth+1)
	case *ast.CompositeLit:
		return e.Type != nil && s.isMapTypeExpr(e.Type, depth+1)
	case *ast.CallExpr:
		switch fun := ast.Unparen(e.Fun).(type) {
		case *ast.Ident:
			if fun.Name == "make" && fun.Obj == nil && len(e.Args) > 0 {
				return s.isMapTypeExpr(e.Args[0], depth+1)
			}
			if s.isMapTypeExpr(fun, depth+1) { // conversion Index(m)
				return true
			}
			return s.funcs[fun.Name] == triMap
		case *ast.SelectorExpr:
			return s.funcs[fun.Sel.Name] == triMap
		case *ast.MapType:
			return true
		}
	case *ast.SelectorExpr:
		return s.fields[e.Sel.Name] == triMap
	case *ast.Ident:
		obj := e.Obj
		if obj == nil {
			return s.pkgVars[e.Name] == triMap
		}
		switch d := obj.Decl.(type) {
		case *ast.Field:
			return s.isMapTypeExpr(d.Type, depth+1)
		case *ast.ValueSpec:
			if d.Type != nil {
				return s.isMapTypeExpr(d.Type, depth+1)
			}
			for i, nm := range d.Names {
				if nm.Name == e.Name && len(d.Values) == len(d.Names) {
					return s.isMapExpr(d.Values[i], depth+1)
				}
			}
		case *ast.AssignStmt:
			for i, lhs := range d.Lhs {
				if id, ok := lhs.(*ast.Ident); ok && id.Name == e.Name && len(d.Rhs) == len(d.Lhs) {
					return s.isMapExpr(d.Rhs[i], depth+1)
				}
			}
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Self-test: the checker must itself be able to fail.

// determinismFixture contains every forbidden construct. A line that must be
// reported carries "want: substr" (several separated by " | "); "want(typed):"
// marks findings that need type information. Every other line must be clean.
const determinismFixture = `package fixture

import (
	_ "crypto/rand" // want: import of "crypto/rand"
	_ "hash/maphash" // want: import of "hash/maphash"
	"maps"
	_ "math/rand" // want: import of "math/rand"
	_ "math/rand/v2" // want: import of "math/rand/v2"
	_ "net" // want: import of "net"
	_ "net/http" // want: import of "net/http"
	_ "os" // want: import of "os"
	_ "os/exec" // want: import of "os/exec"
	_ "reflect" // want: import of "reflect"
	_ "runtime" // want: import of "runtime"
	_ "runtime/debug" // want: import of "runtime/debug"
	"slices"
	_ "sync" // want: import of "sync"
	_ "sync/atomic" // want: import of "sync/atomic"
	"time"
	_ "unsafe" // want: import of "unsafe"
)

type state struct {
	byID  map[string]int
	order []string
}

type index map[int]string

type set[K comparable] map[K]struct{}

var global = map[string]bool{}

var names = []string{"a"}

func (s *state) lookup() map[string]int { return s.byID }

func (s *state) list() []string { return s.order }

func wallClock() time.Duration {
	t := time.Now() // want: time.Now
	_ = time.Since(t) // want: time.Since
	_ = time.Until(t) // want: time.Until
	<-time.After(time.Second) // want: time.After | channel receive
	time.AfterFunc(time.Second, func() {}) // want: time.AfterFunc
	time.Sleep(time.Millisecond) // want: time.Sleep
	_ = time.Tick(time.Second) // want: time.Tick
	_ = time.NewTimer(time.Second) // want: time.NewTimer
	_ = time.NewTicker(time.Second) // want: time.NewTicker
	now := time.Now // want: time.Now
	_ = now
	var d time.Duration = 3 * time.Second
	_ = time.Unix(0, 0).Add(d)
	return d
}

type fakeClock struct{}

func (fakeClock) Now() int { return 0 }

func shadowed() int {
	var time fakeClock
	return time.Now()
}

func concurrency(done chan struct{}) { // want: channel type
	ch := make(chan int, 1) // want: channel type
	go func() {}() // want: go statement
	ch <- 1 // want: channel send
	select { // want: select statement
	case <-done: // want: channel receive
	default:
	}
	for range ch { // want(typed): range over a channel
	}
}

func ranges(s *state, idx index, st set[int], ks []string) int {
	n := 0
	local := make(map[string]int)
	for k := range local { // want: range over map
		n += len(k)
	}
	lit := map[int]int{1: 2}
	for range lit { // want: range over map
	}
	for range s.byID { // want: range over map
	}
	for range idx { // want: range over map
	}
	for range st { // want: range over map
	}
	for range global { // want: range over map
	}
	for range s.lookup() { // want: range over map
	}
	for range (index{}) { // want: range over map
	}
	var declared map[int]bool
	for range declared { // want: range over map
	}
outer:
	for range declared { // want: range over map
		break outer
	}
	nested := map[string]map[string]int{}
	for range nested["x"] { // want(typed): range over map
	}

	// Not maps: slices, ints, strings.
	for range ks {
	}
	for range s.order {
	}
	for range s.list() {
	}
	for range names {
	}
	for i := range 10 {
		n += i
	}
	for range "abc" {
	}

	// order-independent: summing is commutative.
	for _, v := range local {
		n += v
	}
	// Counting entries gives the same result
	// in any iteration order (order-independent).
	for range local {
		n++
	}
	for range lit { // order-independent
		n++
	}
	// order-independent
outer2:
	for range lit {
		break outer2
	}

	for k := range maps.Keys(local) { // want: maps.Keys
		n += len(k)
	}
	_ = slices.Collect(maps.Values(local)) // want: maps.Values
	for range maps.All(local) { // want: maps.All
	}
	for _, k := range slices.Sorted(maps.Keys(local)) {
		n += len(k)
	}
	// order-independent: only the count matters.
	n += len(slices.Collect(maps.Keys(local)))
	return n
}

func generic[M ~map[K]V, K comparable, V any](m M) int {
	n := 0
	for range m { // want: range over map
		n++
	}
	return n
}

func genericSlice[S ~[]E, E any](s S) int {
	n := 0
	for range s {
		n++
	}
	return n
}
`

// fixtureImporter imports the packages the fixture really uses and stands in
// empty packages for the rest, so the self-test needs no slow imports.
type fixtureImporter struct{ real types.Importer }

func (fi fixtureImporter) Import(p string) (*types.Package, error) {
	switch p {
	case "time", "maps", "slices":
		return fi.real.Import(p)
	}
	name := path.Base(p)
	if p == "math/rand/v2" {
		name = "rand"
	}
	pkg := types.NewPackage(p, name)
	pkg.MarkComplete()
	return pkg, nil
}

func TestDeterminismCheckerCatches(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "fixture.go", determinismFixture, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}

	// want[line] lists the substrings expected there; typed[line] those that
	// need type information.
	want := map[int][]string{}
	typedOnly := map[int][]string{}
	for i, line := range strings.Split(determinismFixture, "\n") {
		if _, spec, ok := strings.Cut(line, "// want(typed): "); ok {
			typedOnly[i+1] = strings.Split(spec, " | ")
		} else if _, spec, ok := strings.Cut(line, "// want: "); ok {
			want[i+1] = strings.Split(spec, " | ")
		}
	}

	t.Run("typed", func(t *testing.T) {
		info := &types.Info{
			Types: map[ast.Expr]types.TypeAndValue{},
			Defs:  map[*ast.Ident]types.Object{},
			Uses:  map[*ast.Ident]types.Object{},
		}
		conf := types.Config{Importer: fixtureImporter{real: importer.Default()}}
		if _, err := conf.Check("fixture", fset, []*ast.File{f}, info); err != nil {
			t.Fatalf("fixture does not type-check: %v", err)
		}
		required := map[int][]string{}
		for l, w := range want { // order-independent: builds a map
			required[l] = append(required[l], w...)
		}
		for l, w := range typedOnly { // order-independent: builds a map
			required[l] = append(required[l], w...)
		}
		checkFixtureFindings(t, scanDeterminism(fset, []*ast.File{f}, info), required, nil)
	})

	t.Run("syntactic", func(t *testing.T) {
		checkFixtureFindings(t, scanDeterminism(fset, []*ast.File{f}, nil), want, typedOnly)
	})
}

// checkFixtureFindings asserts that every required substring is reported on
// its line and that nothing is reported on any other line (optional lines may
// or may not be reported).
func checkFixtureFindings(t *testing.T, findings []string, required, optional map[int][]string) {
	t.Helper()
	got := map[int][]string{}
	for _, f := range findings {
		// "fixture.go:LINE:COL: message"
		parts := strings.SplitN(f, ":", 4)
		if len(parts) != 4 {
			t.Fatalf("malformed finding %q", f)
		}
		line, err := strconv.Atoi(parts[1])
		if err != nil {
			t.Fatalf("malformed finding %q", f)
		}
		got[line] = append(got[line], f)
		if _, ok := required[line]; !ok {
			if _, ok := optional[line]; !ok {
				t.Errorf("unexpected finding: %s", f)
			}
		}
	}
	lines := make([]int, 0, len(required))
	for l := range required { // order-independent: collected, then sorted
		lines = append(lines, l)
	}
	sort.Ints(lines)
	for _, l := range lines {
		for _, w := range required[l] {
			found := false
			for _, g := range got[l] {
				if strings.Contains(g, w) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("fixture.go:%d: checker missed %q (got %q)", l, w, got[l])
			}
		}
	}
}
