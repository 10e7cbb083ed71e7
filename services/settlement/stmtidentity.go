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
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
)

// stmtKey identifies a statement at a bank: the account and currency, and
// the statement's own id and sequence number (camt Stmt/Id or Ntfctn/Id and
// ElctrncSeqNb, MT940 :20: and :28C:).
type stmtKey struct {
	account, currency, id, seq string
}

// stmtIdentity is what a parsed file says, independent of how it was
// written: fileID digests its format and, in key order, each statement's
// key and canonical content. Two files with one fileID say the same thing.
// It never refuses a file: a statement sent again with other content (a
// correction, a later page, a bank whose ids repeat) is a new import, as
// before.
type stmtIdentity struct {
	fileID string
}

// identityOf returns the file's identity, or nil when some statement has no
// id (or two statements of the file share a key): such a file is keyed by
// its bytes only.
func identityOf(f *bankstatement.File) *stmtIdentity {
	if len(f.Statements) == 0 {
		return nil
	}
	type keyed struct {
		k      stmtKey
		digest string
	}
	var all []keyed
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
		all = append(all, keyed{k, statementDigest(k, st)})
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i].k, all[j].k
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
	writeFields(h, string(f.Format))
	for _, e := range all {
		writeFields(h, e.k.account, e.k.currency, e.k.id, e.k.seq, e.digest)
	}
	return &stmtIdentity{fileID: hex.EncodeToString(h.Sum(nil))}
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

// reportsByIdentity returns the reports of an earlier import of a file
// with the same identity, or nil.
func (s *Service) reportsByIdentity(ctx context.Context, q *sql.Tx, bank string, id *stmtIdentity) ([]*settlementv1.ReconciliationReport, error) {
	var contentHash string
	err := q.QueryRowContext(ctx, `SELECT content_hash FROM stl_recon_files WHERE bank = $1 AND file_identity = $2`,
		bank, id.fileID).Scan(&contentHash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	prev, err := s.reportsByHash(ctx, q, bank, contentHash)
	if err == nil && len(prev) == 0 {
		err = errors.New("statement identity: the earlier import has no reports")
	}
	return prev, err
}

// storeIdentity records the file's identity for the import whose reports
// are keyed by contentHash. Two imports of the same statements racing
// collide here (a unique violation: Import runs again and finds the
// winner's reports).
func (s *Service) storeIdentity(ctx context.Context, q *sql.Tx, bank string, id *stmtIdentity, contentHash string, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO stl_recon_files (bank, file_identity, content_hash, created_at) VALUES ($1, $2, $3, $4)`,
		bank, id.fileID, contentHash, now.UnixNano())
	return err
}
