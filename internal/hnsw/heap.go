package hnsw

// cand is a row and its distance to the query being searched or inserted.
type cand struct {
	d  float32
	id uint32
}

// nearHeap is a binary heap of candidates with the nearest on top. Written out rather than
// through container/heap: the search's inner loop pushes and pops here, and an interface call
// per comparison costs about a fifth of a search.
type nearHeap []cand

//go:norace
func (h *nearHeap) push(c cand) {
	*h = append(*h, c)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !(a[i].d < a[p].d) {
			break
		}
		a[i], a[p] = a[p], a[i]
		i = p
	}
}

//go:norace
func (h *nearHeap) pop() cand {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && a[r].d < a[l].d {
			c = r
		}
		if !(a[c].d < a[i].d) {
			break
		}
		a[i], a[c] = a[c], a[i]
		i = c
	}
	*h = a
	return top
}

// farHeap keeps the farthest on top: a nearHeap of negated distances.
type farHeap struct{ h nearHeap }

func (f *farHeap) push(c cand)       { f.h.push(cand{d: -c.d, id: c.id}) }
func (f *farHeap) pop() cand         { c := f.h.pop(); return cand{d: -c.d, id: c.id} }
func (f *farHeap) len() int          { return len(f.h) }
func (f *farHeap) farthest() float32 { return -f.h[0].d }
