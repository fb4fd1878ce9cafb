package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
)

// compareCost measures, on bare etcd with 16 concurrent writers, what one more compare costs a
// transaction shaped like a segment-meta commit (three puts and a compare on the first), with
// and without an else-branch that reads the compared keys back. It is the measurement behind
// two choices: a fence of one compare, and transactions without an else-branch (metastore
// reads a failed predicate's keys afterwards instead).
func compareCost(ctx context.Context, o Options, r *Report, cli *clientv3.Client) error {
	rounds, round := 20, 400*time.Millisecond
	if o.Quick {
		rounds, round = 2, 100*time.Millisecond
	}
	const writers = 16
	t := Table{Title: fmt.Sprintf("one more compare on bare etcd, %d writers, txn of 3 puts and 1 compare (median of %d paired rounds of %s)", writers, rounds, round),
		Columns: []string{"else-branch", "1 compare: txns/s", "2 compares: txns/s", "cost of the second compare"}}
	bar := o.bar(int64(4*rounds), "  bare etcd compares", " rounds")
	defer bar.Finish()
	for _, withElse := range []bool{true, false} {
		var one, two, costs []float64
		for i := range rounds {
			// Alternate which runs first, so drift within a pair does not favour either.
			order := []bool{false, true}
			if i%2 == 1 {
				order = []bool{true, false}
			}
			rate := map[bool]float64{}
			for _, extra := range order {
				n, err := compareRound(ctx, cli, writers, withElse, extra, round)
				if err != nil {
					return err
				}
				rate[extra] = n
				_ = bar.Add(1)
			}
			one, two = append(one, rate[false]), append(two, rate[true])
		}
		costs = pairCosts(one, two)
		label := "none"
		if withElse {
			label = "reads the compared keys"
		}
		cost := median(costs)
		t.Add(label, f0(median(one)), f0(median(two)), fmt.Sprintf("%.1f%%", cost))
		key := "meta.bare_compare_cost_pct.no_else"
		if withElse {
			key = "meta.bare_compare_cost_pct.else"
		}
		r.Figures[key] = cost
	}
	r.Tables = append(r.Tables, t)
	return nil
}

// compareRound runs writers goroutines committing transactions on keys of their own for d and
// returns the rate; extra adds a compare on a second key, withElse reads the compared keys in
// an else-branch, as metastore once did.
func compareRound(ctx context.Context, cli *clientv3.Client, writers int, withElse, extra bool, d time.Duration) (float64, error) {
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	stop := time.Now().Add(d)
	for w := range writers {
		g.Go(func() error {
			rec, ep := fmt.Sprintf("bench/cmp/r/%d", w), fmt.Sprintf("bench/cmp/e/%d", w)
			res, err := cli.Put(gctx, ep, "epoch")
			if err != nil {
				return err
			}
			epRev := res.Header.Revision
			res, err = cli.Put(gctx, rec, "record")
			if err != nil {
				return err
			}
			prev := res.Header.Revision
			for i := 0; time.Now().Before(stop); i++ {
				cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(rec), "=", prev)}
				elses := []clientv3.Op{clientv3.OpGet(rec)}
				if extra {
					cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(ep), "=", epRev))
					elses = append(elses, clientv3.OpGet(ep))
				}
				txn := cli.Txn(gctx).If(cmps...).Then(
					clientv3.OpPut(rec, "a segment record of about this size, as JSON"),
					clientv3.OpPut(fmt.Sprintf("bench/cmp/f/%d/%d/insert", w, i), "an insert file record"),
					clientv3.OpPut(fmt.Sprintf("bench/cmp/f/%d/%d/stats", w, i), "a stats file record"))
				if withElse {
					txn = txn.Else(elses...)
				}
				resp, err := txn.Commit()
				if err != nil {
					return err
				}
				if !resp.Succeeded {
					return fmt.Errorf("bare compare txn of writer %d failed its predicate", w)
				}
				prev = resp.Header.Revision
				n.Add(1)
			}
			return nil
		})
	}
	err := g.Wait()
	return float64(n.Load()) / d.Seconds(), err
}
