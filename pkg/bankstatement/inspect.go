package bankstatement

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// The JSON shape `bcx statement inspect` prints. Field order and names are
// part of the operator-facing contract; the extra fields appear only with
// -details, so the default output has exactly the documented keys.
type inspectFile struct {
	Format     Format             `json:"format"`
	Statements []inspectStatement `json:"statements"`
}

type inspectStatement struct {
	ID             string         `json:"id,omitempty"`
	Account        string         `json:"account"`
	Currency       string         `json:"currency"`
	OpeningBalance *string        `json:"opening_balance,omitempty"`
	ClosingBalance *string        `json:"closing_balance,omitempty"`
	BalanceCheck   CheckStatus    `json:"balance_check"`
	Difference     *string        `json:"balance_difference,omitempty"`
	CheckReason    string         `json:"balance_check_reason,omitempty"`
	Entries        []inspectEntry `json:"entries"`
}

type inspectEntry struct {
	Amount            string    `json:"amount"`
	Currency          string    `json:"currency"`
	Direction         Direction `json:"direction"`
	BookingDate       string    `json:"booking_date"`
	ValueDate         string    `json:"value_date"`
	BankReference     string    `json:"bank_reference"`
	EndToEndID        string    `json:"end_to_end_id"`
	Reversal          bool      `json:"reversal,omitempty"`
	Status            string    `json:"status,omitempty"`
	CustomerReference string    `json:"customer_reference,omitempty"`
	BankTxCode        string    `json:"bank_tx_code,omitempty"`
	RemittanceInfo    string    `json:"remittance_info,omitempty"`
	Counterparty      string    `json:"counterparty,omitempty"`
}

// InspectJSON renders a parsed file in the inspect shape. With details it
// adds the statement id, the balance difference and reason, and per entry
// the reversal flag, status, references, transaction code, remittance text
// and counterparty name.
func InspectJSON(f *File, details bool) ([]byte, error) {
	out := inspectFile{Format: f.Format, Statements: make([]inspectStatement, 0, len(f.Statements))}
	for i := range f.Statements {
		s := &f.Statements[i]
		is := inspectStatement{
			Account:      s.Account,
			Currency:     s.Currency,
			BalanceCheck: s.Check.Status,
			Entries:      make([]inspectEntry, 0, len(s.Entries)),
		}
		if s.OpeningBalance != nil {
			v := FormatAmount(s.OpeningBalance.Amount)
			is.OpeningBalance = &v
		}
		if s.ClosingBalance != nil {
			v := FormatAmount(s.ClosingBalance.Amount)
			is.ClosingBalance = &v
		}
		if details {
			is.ID = s.ID
			is.CheckReason = s.Check.Reason
			if s.Check.Status != Unchecked {
				v := FormatAmount(s.Check.Difference)
				is.Difference = &v
			}
		}
		for j := range s.Entries {
			e := &s.Entries[j]
			ie := inspectEntry{
				Amount:        FormatAmount(e.Amount),
				Currency:      e.Currency,
				Direction:     e.Direction,
				BookingDate:   e.BookingDate.String(),
				ValueDate:     e.ValueDate.String(),
				BankReference: e.BankReference,
				EndToEndID:    e.EndToEndID,
			}
			if details {
				ie.Reversal = e.Reversal
				ie.Status = e.Status
				ie.CustomerReference = e.CustomerReference
				ie.BankTxCode = e.BankTxCode
				ie.RemittanceInfo = e.RemittanceInfo
				ie.Counterparty = e.Counterparty.Name
			}
			is.Entries = append(is.Entries, ie)
		}
		out.Statements = append(out.Statements, is)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	// Remittance text routinely contains '&' and '<'; operators should see
	// them as written.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Inspect parses a statement file with the default options and returns the
// inspect JSON (without details), newline-terminated.
func Inspect(data []byte) ([]byte, error) {
	f, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return InspectJSON(f, false)
}

const usage = `usage: bcx statement inspect [-details] [-allow-fragments] [-max-bytes N] FILE

inspect parses a bank statement file (ISO 20022 camt.053 or camt.054, versions
001.02 to 001.08, or SWIFT MT940) and prints it as JSON without importing it.
FILE "-" reads standard input. A file that cannot be parsed exits non-zero
with the reason; a statement that does not add up is printed with
"balance_check": "inconsistent".

  -details          add statement ids, balance differences and reasons, and
                    per-entry status, references, remittance and counterparty
  -allow-fragments  accept MT940 statements missing :20:/:25:/:60a:/:62a:
  -max-bytes N      refuse files larger than N bytes (default 64 MiB)
`

// ErrUsage is returned by Main for a malformed command line.
var ErrUsage = errors.New("usage")

// Main runs `bcx statement ARGS…`; args are what follows "statement" (for
// example ["inspect", "camt053.xml"]). It writes the result to stdout and
// returns an error, carrying the reason, for anything that should make the
// command exit non-zero.
func Main(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: missing subcommand\n%s", ErrUsage, usage)
	}
	switch args[0] {
	case "inspect":
		return inspectCmd(args[1:], stdout)
	case "help", "-h", "-help", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("%w: unknown subcommand %q\n%s", ErrUsage, args[0], usage)
}

func inspectCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("statement inspect", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, with the usage text
	details := fs.Bool("details", false, "")
	fragments := fs.Bool("allow-fragments", false, "")
	maxBytes := fs.Int64("max-bytes", DefaultMaxBytes, "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v\n%s", ErrUsage, err, usage)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: inspect takes exactly one FILE\n%s", ErrUsage, usage)
	}
	if *maxBytes <= 0 {
		return fmt.Errorf("%w: -max-bytes must be positive\n%s", ErrUsage, usage)
	}
	name := fs.Arg(0)
	var r io.Reader = os.Stdin
	if name != "-" {
		fh, err := os.Open(name)
		if err != nil {
			return err
		}
		defer fh.Close()
		r = fh
	}
	opts := Options{MaxBytes: *maxBytes, AllowMT940Fragments: *fragments}
	f, err := opts.ParseReader(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	out, err := InspectJSON(f, *details)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
