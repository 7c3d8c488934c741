// Command checkpointverify checks a privplate audit checkpoint with nothing but Go's
// golang.org/x/mod/sumdb packages, as a witness or auditor with no privplate code would:
//
//	checkpointverify -vkey VKEY -checkpoint NOTE
//	    [-entry FILE -index I -inclusion PROOF]
//	    [-old NOTE -consistency PROOF]
//
// NOTE files are signed checkpoint notes (/.well-known/privplate/checkpoint); PROOF files hold
// one base64 hash per line (/.well-known/privplate/inclusion and /consistency); FILE is an
// audit entry's exact bytes, hashed here with tlog.RecordHash. It prints what it checked and
// exits 1 with a message on the first failure. Built in GOPATH mode against Debian's
// golang-golang-x-mod-dev by tests/test_audit_go.py.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

func main() {
	vkey := flag.String("vkey", "", "the deployment's verifier key (privplate audit public-key)")
	newPath := flag.String("checkpoint", "", "the signed checkpoint note to check")
	entryPath := flag.String("entry", "", "an audit entry's bytes, to prove included")
	index := flag.Int64("index", -1, "that entry's index (its seq)")
	inclusionPath := flag.String("inclusion", "", "the inclusion proof for -entry")
	oldPath := flag.String("old", "", "an older signed checkpoint note of the same log")
	consistencyPath := flag.String("consistency", "", "the consistency proof from -old")
	flag.Parse()
	if err := run(*vkey, *newPath, *entryPath, *index, *inclusionPath, *oldPath, *consistencyPath); err != nil {
		fmt.Fprintln(os.Stderr, "checkpointverify:", err)
		os.Exit(1)
	}
}

func run(vkey, newPath, entryPath string, index int64, inclusionPath, oldPath, consistencyPath string) error {
	if vkey == "" || newPath == "" {
		return errors.New("-vkey and -checkpoint are required")
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return fmt.Errorf("verifier key: %v", err)
	}
	latest, err := open(newPath, verifier)
	if err != nil {
		return err
	}
	fmt.Printf("checkpoint %s size %d root %s\n", latest.origin, latest.size, latest.root)

	if entryPath != "" {
		entry, err := os.ReadFile(entryPath)
		if err != nil {
			return err
		}
		proof, err := readProof(inclusionPath)
		if err != nil {
			return err
		}
		leaf := tlog.RecordHash(entry)
		fmt.Printf("leaf %x\n", leaf[:])
		// CheckRecord(proof, tree size, tree hash, record index, record hash).
		if err := tlog.CheckRecord(tlog.RecordProof(proof), latest.size, latest.root, index, leaf); err != nil {
			return fmt.Errorf("inclusion of entry %d in the tree of %d: %v", index, latest.size, err)
		}
		fmt.Printf("entry %d is included\n", index)
	}

	if oldPath != "" {
		older, err := open(oldPath, verifier)
		if err != nil {
			return err
		}
		if older.origin != latest.origin {
			return fmt.Errorf("the checkpoints name different logs: %s, %s", older.origin, latest.origin)
		}
		proof, err := readProof(consistencyPath)
		if err != nil {
			return err
		}
		// CheckTree(proof, newer size, newer hash, older size, older hash).
		if err := tlog.CheckTree(tlog.TreeProof(proof), latest.size, latest.root, older.size, older.root); err != nil {
			return fmt.Errorf("consistency from %d to %d: %v", older.size, latest.size, err)
		}
		fmt.Printf("consistent from %d to %d\n", older.size, latest.size)
	}
	return nil
}

// open verifies a checkpoint note and parses its text: origin (the key's name), size, root,
// and no extension lines (privplate signs none).
func open(path string, verifier note.Verifier) (checkpoint, error) {
	msg, err := os.ReadFile(path)
	if err != nil {
		return checkpoint{}, err
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return checkpoint{}, fmt.Errorf("%s: %v", path, err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return checkpoint{}, fmt.Errorf("%s: not a three-line checkpoint", path)
	}
	if lines[0] != verifier.Name() {
		return checkpoint{}, fmt.Errorf("%s: origin %q is not the key's name", path, lines[0])
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || lines[1] != strconv.FormatInt(size, 10) {
		return checkpoint{}, fmt.Errorf("%s: bad tree size", path)
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return checkpoint{}, fmt.Errorf("%s: bad root: %v", path, err)
	}
	return checkpoint{lines[0], size, root}, nil
}

func readProof(path string) ([]tlog.Hash, error) {
	if path == "" {
		return nil, errors.New("a proof file is required")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var proof []tlog.Hash
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		h, err := tlog.ParseHash(scanner.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		proof = append(proof, h)
	}
	return proof, nil
}
