// Command guide applies a guide in docs/ to a copy of the repository,
// exactly as written, so CI can prove the guide still works. Its steps:
//   - a "`path`:" line followed by a code block writes that file;
//   - "Delete:" followed by a block of paths deletes them;
//   - "In `path`, remove:" followed by a block removes that exact text
//     (it must be there once);
//   - "In `path`, replace:" followed by a block, then "with:" and a block,
//     replaces the first text (there once) with the second;
//   - "Run:" followed by a block runs it with bash in the copy (a step's
//     shell commands, and the guide's own "go test ./..." after a step);
//   - the adding guide's "In `file`, add" steps go into routes/routes.go,
//     server/build.go and server/http.go.
//
// tests/guide/run.sh copies the tree, runs this in the copy, then
// regenerates the docs and runs gofmt, vet and the suite there.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

var fileLine = regexp.MustCompile("^`([a-z0-9_./-]+\\.(go|sql))`:$")

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: guide GUIDE.md REPOSITORY-COPY")
		os.Exit(2)
	}
	if err := apply(os.Args[2], os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "guide:", err)
		os.Exit(1)
	}
}

type block struct {
	intro string // the line before the code block
	body  string
}

var (
	removeLine  = regexp.MustCompile("^In `([a-z0-9_./-]+)`, remove:$")
	replaceLine = regexp.MustCompile("^In `([a-z0-9_./-]+)`, replace:$")
)

func apply(root, guide string) error {
	raw, err := os.ReadFile(filepath.Join(root, guide))
	if err != nil {
		return err
	}
	blocks := codeBlocks(string(raw))
	files, fragments := 0, 0
	for i, b := range blocks {
		switch m := fileLine.FindStringSubmatch(b.intro); {
		case b.intro == "with:":
			// the second half of a replace, applied with the first
		case replaceLine.MatchString(b.intro):
			if i+1 == len(blocks) || blocks[i+1].intro != "with:" {
				return fmt.Errorf("%s: %q is not followed by a \"with:\" block", guide, b.intro)
			}
			// The blocks' last line break is not part of the text: a
			// one-line block may name part of a line.
			text, with := strings.TrimSuffix(b.body, "\n"), strings.TrimSuffix(blocks[i+1].body, "\n")
			if err := replace(filepath.Join(root, replaceLine.FindStringSubmatch(b.intro)[1]), text, with); err != nil {
				return err
			}
			fragments++
		case b.intro == "Run:":
			fmt.Printf("running:\n%s", b.body)
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", b.body)
			cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s: running %q: %w", guide, b.body, err)
			}
		case b.intro == "Delete:":
			for _, path := range strings.Fields(b.body) {
				if err := os.Remove(filepath.Join(root, path)); err != nil {
					return err
				}
				fmt.Println("deleted", path)
				files++
			}
		case removeLine.MatchString(b.intro):
			if err := remove(filepath.Join(root, removeLine.FindStringSubmatch(b.intro)[1]), b.body); err != nil {
				return err
			}
			fragments++
		case m != nil:
			if err := os.WriteFile(filepath.Join(root, m[1]), []byte(b.body), 0o644); err != nil {
				return err
			}
			fmt.Println("wrote", m[1])
			files++
		case strings.HasPrefix(b.intro, "In `routes/routes.go`"):
			if err := patchRoutes(root, b.body); err != nil {
				return err
			}
			fragments++
		case strings.HasPrefix(b.intro, "In `server/build.go`"):
			if err := patchServices(root, b.body); err != nil {
				return err
			}
			fragments++
		case strings.HasPrefix(b.intro, "In `server/http.go`"):
			if err := insertAfter(filepath.Join(root, "server/http.go"), "routes.Register(e, routes.Handlers{", b.body); err != nil {
				return err
			}
			fragments++
		case strings.HasPrefix(b.intro, "In `"):
			return fmt.Errorf("%s: a step this tool does not know: %q (update tests/guide)", guide, b.intro)
		}
	}
	if files == 0 || fragments == 0 {
		return fmt.Errorf("%s: found %d files and %d edits: its shape changed, update tests/guide", guide, files, fragments)
	}
	return nil
}

// remove takes text out of the file at path; it must be there exactly once.
func remove(path, text string) error { return replace(path, text, "") }

// replace puts with in place of text in the file at path; text must be
// there exactly once.
func replace(path, text, with string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if n := strings.Count(string(raw), text); n != 1 {
		return fmt.Errorf("%s: the text to change is there %d times, want once:\n%s", path, n, text)
	}
	fmt.Println("edited", path)
	return os.WriteFile(path, []byte(strings.Replace(string(raw), text, with, 1)), 0o644)
}

func codeBlocks(doc string) []block {
	var out []block
	var intro, body strings.Builder
	inBlock, last := false, ""
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !inBlock && strings.HasPrefix(line, "```"):
			inBlock = true
			intro.Reset()
			intro.WriteString(last)
			body.Reset()
		case inBlock && line == "```":
			inBlock = false
			out = append(out, block{intro: intro.String(), body: body.String()})
		case inBlock:
			body.WriteString(line + "\n")
		case strings.TrimSpace(line) != "":
			last = line
		}
	}
	return out
}

// patchRoutes adds the guide's new Handlers field and Register call.
func patchRoutes(root, fragment string) error {
	path := filepath.Join(root, "routes/routes.go")
	field, call, err := sections(fragment, "type Handlers struct", "func Register(")
	if err != nil {
		return fmt.Errorf("the routes.go step: %w", err)
	}
	if err := insertAfter(path, "type Handlers struct {", field); err != nil {
		return err
	}
	return insertAfter(path, "func Register(e *echo.Echo, h Handlers, g Guards) {", call)
}

// patchServices adds the guide's new Services field and the line that
// builds it, before the health checks (the last service newServices makes).
func patchServices(root, fragment string) error {
	path := filepath.Join(root, "server/build.go")
	field, build, err := sections(fragment, "type Services struct", "func newServices(")
	if err != nil {
		return fmt.Errorf("the build.go step: %w", err)
	}
	if err := insertAfter(path, "type Services struct {", field); err != nil {
		return err
	}
	return insertBefore(path, "\toptional := map[string]services.Check{}", build)
}

// sections splits a fragment into the lines under its struct and under its
// func, leaving out "// ...existing..." placeholders and the struct and
// func lines themselves.
func sections(fragment, structLine, funcLine string) (string, string, error) {
	var first, second []string
	section := ""
	for _, line := range strings.Split(fragment, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, structLine):
			section = "first"
		case strings.HasPrefix(t, funcLine):
			section = "second"
		case t == "" || t == "}" || strings.HasPrefix(t, "// ..."):
		case section == "first":
			first = append(first, line)
		case section == "second":
			second = append(second, line)
		}
	}
	if len(first) == 0 || len(second) == 0 {
		return "", "", errors.New("no field or no call")
	}
	return strings.Join(first, "\n") + "\n", strings.Join(second, "\n") + "\n", nil
}

// insertBefore puts text on the lines before the one holding anchor.
func insertBefore(path, anchor, text string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(raw)
	i := strings.Index(s, anchor)
	if i < 0 {
		return fmt.Errorf("%s: %q not found", path, anchor)
	}
	i = strings.LastIndex(s[:i], "\n") + 1
	fmt.Printf("edited %s before %q\n", path, anchor)
	return os.WriteFile(path, []byte(s[:i]+text+s[i:]), 0o644)
}

func insertAfter(path, anchor, text string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(raw)
	i := strings.Index(s, anchor)
	if i < 0 {
		return fmt.Errorf("%s: %q not found", path, anchor)
	}
	i += len(anchor)
	i += strings.Index(s[i:], "\n") + 1
	fmt.Printf("edited %s after %q\n", path, anchor)
	return os.WriteFile(path, []byte(s[:i]+text+s[i:]), 0o644)
}
