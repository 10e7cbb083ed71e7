package settlement

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"sort"
	"strings"
	"time"

	"github.com/bcx-exchange/bcx/pkg/bankstatement"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
)

// reasonConflict refuses (FailedPrecondition) a statement the bank had sent
// before, under the same identity, with other content, or as part of
// another file.
const reasonConflict = "STATEMENT_CONFLICT"

// stmtKey identifies a statement at a bank: the account and currency, and
// the statement's own id and sequence number (camt Stmt/Id or Ntfctn/Id and
// ElctrncSeqNb, MT940 :20: and :28C:).
type stmtKey struct {
	account, currency, id, seq string
}

// stmtIdentity is what a parsed file is, independent of how it was written:
// its statements' keys and canonical digests (in file order) and fileID, a
// digest of the sorted keys that names the file's set of statements.
type stmtIdentity struct {
	keys    []stmtKey
	digests []string
	fileID  string
}

// identityOf returns the file's identity, or nil when some statement has no
// id (or two statements of the file share a key): such a file is keyed by
// its bytes only.
func identityOf(f *bankstatement.File) *stmtIdentity {
	if len(f.Statements) == 0 {
		return nil
	}
	id := &stmtIdentity{}
	seen := map[stmtKey]bool{}
	for i := range f.Statements {
		st := &f.Statements[i]
		if strings.TrimSpace(st.ID) == "" {
			return nil
		}
		k := stmtKey{account: st.Account, currency: st.Currency, id: st.ID, seq: normSeq(st.SequenceNumber)}
		if seen[k] {
			return nil
		}
		seen[k] = true
		id.keys = append(id.keys, k)
		id.digests = append(id.digests, statementDigest(k, st))
	}
	sorted := append([]stmtKey(nil), id.keys...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.account != b.account {
			return a.account < b.account
		}
		if a.currency != b.currency {
			return a.currency < b.currency
		}
		if a.id != b.id {
			return a.id < b.id
		}
		return a.seq < b.seq
	})
	h := sha256.New()
	for _, k := range sorted {
		writeFields(h, k.account, k.currency, k.id, k.seq)
	}
	id.fileID = hex.EncodeToString(h.Sum(nil))
	return id
}

// normSeq writes a sequence number without leading zeros in its numeric
// parts, so that MT940 :28C: "00027/00001" and "27/1" (or camt ElctrncSeqNb
// "012" and "12") are the same.
func normSeq(s string) string {
	parts := strings.Split(strings.TrimSpace(s), "/")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			if p = strings.TrimLeft(p, "0"); p == "" {
				p = "0"
			}
			parts[i] = p
		}
	}
	return strings.Join(parts, "/")
}

// writeFields writes each field length-prefixed, so that no two lists of
// fields write the same bytes.
func writeFields(h hash.Hash, fields ...string) {
	var buf [256]byte
	h.Write(appendFields(buf[:0], fields...))
}

func appendFields(b []byte, fields ...string) []byte {
	for _, f := range fields {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// statementDigest is the canonical content of a statement: its key, its
// booked opening and closing balances and, in order, every entry's amount,
// sign, currency, status, dates and references (what reconciliation uses,
// and the references that identify a movement). Formatting, the file's
// message id and creation time, free texts and parties play no part.
func statementDigest(k stmtKey, st *bankstatement.Statement) string {
	h := sha256.New()
	writeFields(h, "statement", k.account, k.currency, k.id, k.seq)
	for _, b := range []*bankstatement.Balance{st.OpeningBalance, st.ClosingBalance} {
		if b == nil {
			writeFields(h, "no balance")
			continue
		}
		writeFields(h, "balance", b.Amount.String(), b.Currency, b.Date.String())
	}
	// One write per entry: the hash is fed in blocks, not field by field.
	var buf []byte
	for _, e := range st.Entries {
		rev := "0"
		if e.Reversal {
			rev = "1"
		}
		buf = appendFields(buf[:0], "entry", e.Amount.String(), e.Currency, string(e.Direction), rev, e.Status,
			e.BookingDate.String(), e.ValueDate.String(), e.BankReference, e.EndToEndID, e.CustomerReference, e.EntryReference)
		for _, d := range e.Details {
			amount := ""
			if d.HasAmount {
				amount = d.Amount.String()
			}
			buf = appendFields(buf, "detail", d.EndToEndID, d.InstructionID, d.TransactionID, d.BankReference, d.UETR,
				amount, d.Currency, string(d.Direction))
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// reportsByIdentity looks for an earlier import of the file's statements.
// It returns the earlier reports when the very same statements (same keys,
// same content) were imported before as one file, nil when none of them
// was, and refuses (STATEMENT_CONFLICT) the file when one of them was
// imported before with other content, or as part of a different file.
func (s *Service) reportsByIdentity(ctx context.Context, q *sql.Tx, bank string, id *stmtIdentity) ([]*settlementv1.ReconciliationReport, error) {
	found := 0
	var prevHash string
	for i, k := range id.keys {
		var digest, fileID, contentHash string
		err := q.QueryRowContext(ctx, `SELECT digest, file_identity, content_hash FROM stl_recon_statements
			WHERE bank = $1 AND account = $2 AND currency = $3 AND statement_id = $4 AND sequence_number = $5`,
			bank, k.account, k.currency, k.id, k.seq).Scan(&digest, &fileID, &contentHash)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found++
		if digest != id.digests[i] {
			return nil, rpcerr.Precondition(reasonConflict,
				"statement %q (sequence %q) of account %s in %s was imported before (report %s) with different content; the earlier import stands",
				k.id, k.seq, k.account, k.currency, s.reportOfStatement(ctx, q, bank, contentHash, k))
		}
		if fileID != id.fileID || (prevHash != "" && contentHash != prevHash) {
			return nil, rpcerr.Precondition(reasonConflict,
				"statement %q (sequence %q) of account %s in %s was imported before (report %s) in a file with other statements; send the statements not yet imported on their own",
				k.id, k.seq, k.account, k.currency, s.reportOfStatement(ctx, q, bank, contentHash, k))
		}
		prevHash = contentHash
	}
	if found == 0 {
		return nil, nil
	}
	// Every statement found was imported with this very file identity, so
	// that import holds all of them (it recorded the whole set in one
	// transaction). On PostgreSQL each query above sees what was committed
	// when it ran: a racing import committing mid-loop leaves some keys
	// unseen here, which is why "not found" for some is no refusal.
	prev, err := s.reportsByHash(ctx, q, bank, prevHash)
	if err == nil && len(prev) == 0 {
		err = errors.New("statement identity: the earlier import has no reports")
	}
	return prev, err
}

// reportOfStatement names the earlier report of a statement's account, for
// an error message.
func (s *Service) reportOfStatement(ctx context.Context, q *sql.Tx, bank, contentHash string, k stmtKey) string {
	prev, err := s.reportsByHash(ctx, q, bank, contentHash)
	if err != nil || len(prev) == 0 {
		return "unknown"
	}
	for _, r := range prev {
		if r.Account == k.account && r.Currency == k.currency {
			return r.ReportId
		}
	}
	return prev[0].ReportId
}

// storeIdentity records the file's statements as imported by the import
// whose reports are keyed by contentHash. Two imports of the same statements
// racing collide here (a unique violation: Import runs again and finds the
// winner's reports).
func (s *Service) storeIdentity(ctx context.Context, q *sql.Tx, bank string, id *stmtIdentity, contentHash string, now time.Time) error {
	for i, k := range id.keys {
		if _, err := q.ExecContext(ctx, `INSERT INTO stl_recon_statements (bank, account, currency, statement_id, sequence_number,
			digest, file_identity, content_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			bank, k.account, k.currency, k.id, k.seq, id.digests[i], id.fileID, contentHash, now.UnixNano()); err != nil {
			return err
		}
	}
	return nil
}
