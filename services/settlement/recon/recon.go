// Package recon matches the entries of a bank statement to the movements the
// ledger expects on the exchange's account at that bank.
//
// The rules, in order:
//
//  1. Reference: an entry's end-to-end id, or, failing that, the end-to-end
//     ids of its transaction details (a batch booking), or, failing that, its
//     bank reference, selects the unmatched ledger movements carrying the
//     same id. If their signed amounts add up to the entry's, they match it
//     (one entry to one or many movements, matched_by "end_to_end_id" or
//     "bank_reference"). If they do not, but exactly one of them has the
//     entry's amount, that one matches. Otherwise the entry and those
//     movements are an amount mismatch: the reference says they belong
//     together and the money says they do not.
//  2. Amount and date: an entry no reference matched is matched to one
//     unmatched movement with exactly the same signed amount (same currency:
//     a statement is matched only against its own currency's account) whose
//     value date is within the tolerance (Tolerance days either way) of the
//     entry's value date (its booking date when it has none); the nearest
//     date wins, then the earliest movement (matched_by "amount_date"). This
//     pass is one-to-one only: searching subsets of movements for a sum
//     would match coincidences.
//  3. What is left is unmatched, on either side.
//
// Amounts are compared to the minor unit: there is no amount tolerance,
// because a bank that moved a different amount is a break to investigate.
package recon

import (
	"sort"
)

// DefaultToleranceDays is how far apart the bank's value date and the
// ledger's expected value date may be for an amount-and-date match: two
// calendar days covers a weekend-free T+1 value date and a booking made
// around midnight.
const DefaultToleranceDays = 2

// Entry is one booked statement entry.
type Entry struct {
	// AmountMinor is signed from the account holder's side: positive for a
	// credit to the exchange's account, negative for a debit.
	AmountMinor int64
	// Day is the value date (or booking date) as days since 1970-01-01.
	Day           int32
	EndToEndID    string
	BankReference string
	// DetailEndToEndIDs are the distinct end-to-end ids of the entry's
	// transaction details, when it has several (a batch booking).
	DetailEndToEndIDs []string
}

// Movement is a bank movement the ledger expects.
type Movement struct {
	ID            int64
	AmountMinor   int64 // signed like Entry.AmountMinor
	Day           int32
	EndToEndID    string
	BankReference string
}

// How a match was made.
const (
	ByEndToEndID    = "end_to_end_id"
	ByBankReference = "bank_reference"
	ByAmountDate    = "amount_date"
)

// Match pairs an entry with movements (indices into the inputs).
type Match struct {
	Entry     int
	Movements []int
	By        string
}

// Result is the outcome of matching.
type Result struct {
	Matched            []Match
	Mismatched         []Match
	UnmatchedEntries   []int
	UnmatchedMovements []int
}

// Run matches entries to movements by the rules in the package comment.
func Run(entries []Entry, movements []Movement, toleranceDays int32) Result {
	used := make([]bool, len(movements))
	byE2E := make(map[string][]int, len(movements))
	byRef := make(map[string][]int, len(movements))
	for i, m := range movements {
		if m.EndToEndID != "" {
			byE2E[m.EndToEndID] = append(byE2E[m.EndToEndID], i)
		}
		if m.BankReference != "" {
			byRef[m.BankReference] = append(byRef[m.BankReference], i)
		}
	}
	free := func(idx []int) []int {
		out := idx[:0:0]
		for _, i := range idx {
			if !used[i] {
				out = append(out, i)
			}
		}
		return out
	}
	var res Result
	done := make([]bool, len(entries))
	for ei, e := range entries {
		var group []int
		by := ""
		switch {
		case e.EndToEndID != "" && len(free(byE2E[e.EndToEndID])) > 0:
			group, by = free(byE2E[e.EndToEndID]), ByEndToEndID
		case e.EndToEndID == "" && len(e.DetailEndToEndIDs) > 0:
			seen := map[int]bool{}
			for _, id := range e.DetailEndToEndIDs {
				for _, i := range free(byE2E[id]) {
					if !seen[i] {
						seen[i] = true
						group = append(group, i)
					}
				}
			}
			by = ByEndToEndID
		}
		if len(group) == 0 && e.BankReference != "" {
			group, by = free(byRef[e.BankReference]), ByBankReference
		}
		if len(group) == 0 {
			continue
		}
		sort.Ints(group)
		var sum int64
		exact := -1
		for _, i := range group {
			sum += movements[i].AmountMinor
			if movements[i].AmountMinor == e.AmountMinor {
				if exact == -1 {
					exact = i
				} else {
					exact = -2 // more than one: ambiguous
				}
			}
		}
		switch {
		case sum == e.AmountMinor:
			res.Matched = append(res.Matched, Match{Entry: ei, Movements: group, By: by})
		case exact >= 0:
			group = []int{exact}
			res.Matched = append(res.Matched, Match{Entry: ei, Movements: group, By: by})
		default:
			res.Mismatched = append(res.Mismatched, Match{Entry: ei, Movements: group, By: by})
		}
		for _, i := range group {
			used[i] = true
		}
		done[ei] = true
	}

	// Amount and date: candidates by amount, nearest date, then lowest id.
	byAmount := make(map[int64][]int)
	for i, m := range movements {
		if !used[i] {
			byAmount[m.AmountMinor] = append(byAmount[m.AmountMinor], i)
		}
	}
	for _, idx := range byAmount {
		sort.Slice(idx, func(a, b int) bool { return movements[idx[a]].ID < movements[idx[b]].ID })
	}
	for ei, e := range entries {
		if done[ei] {
			continue
		}
		best, bestDiff := -1, int32(0)
		cands := byAmount[e.AmountMinor]
		for _, i := range cands {
			if used[i] {
				continue
			}
			d := movements[i].Day - e.Day
			if d < 0 {
				d = -d
			}
			if d <= toleranceDays && (best == -1 || d < bestDiff) {
				best, bestDiff = i, d
				if d == 0 {
					break
				}
			}
		}
		if best == -1 {
			res.UnmatchedEntries = append(res.UnmatchedEntries, ei)
			continue
		}
		used[best] = true
		done[ei] = true
		res.Matched = append(res.Matched, Match{Entry: ei, Movements: []int{best}, By: ByAmountDate})
		// Drop used candidates from the front so that a long run of equal
		// amounts stays linear.
		for len(cands) > 0 && used[cands[0]] {
			cands = cands[1:]
		}
		byAmount[e.AmountMinor] = cands
	}
	for i := range movements {
		if !used[i] {
			res.UnmatchedMovements = append(res.UnmatchedMovements, i)
		}
	}
	sort.Slice(res.Matched, func(a, b int) bool { return res.Matched[a].Entry < res.Matched[b].Entry })
	return res
}
