package mnist

import "testing"

// TestLoad: 60,000 training and 10,000 test images of 784 pixels, each a digit (not blank).
func TestLoad(t *testing.T) {
	train, test, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if train.Rows != 60000 || test.Rows != 10000 || len(train.Vectors) != 60000*Dim || len(test.Vectors) != 10000*Dim {
		t.Fatalf("%d training and %d test images (%d, %d values)", train.Rows, test.Rows, len(train.Vectors), len(test.Vectors))
	}
	for _, s := range []Set{train, test} {
		for _, i := range []int{0, s.Rows / 2, s.Rows - 1} {
			var ink float32
			for _, px := range s.Row(i) {
				ink += px
			}
			if ink == 0 {
				t.Fatalf("image %d is blank", i)
			}
		}
	}
}
