package receipts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
)

// The registry's history is one hash chain over every event of every receipt.
//
//	payload        canonical JSON of the event (chainPayload below: struct
//	               fields in a fixed order, detail maps with sorted keys)
//	payload_digest hex(SHA-256(payload))
//	hash           hex(SHA-256(previous_hash + "\n" + receipt_number + "\n" + payload_digest))
//
// The first event's previous_hash is genesisHash. The hash commits to the
// payload through its digest, so a proof can carry the events of other
// receipts as "sha256:<payload_digest>" without revealing their holders,
// pledges and weights; the receipt number stays in the clear (it is committed
// directly) so a verifier can check that no event of the receipt it checks was
// left out of the proof.
const genesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

const redactedPrefix = "sha256:"

// Event kinds. The first event of every receipt is one of creationKinds.
const (
	kindIssued        = "issued"
	kindSplitFrom     = "split_from"
	kindMergedFrom    = "merged_from"
	kindDeliveredFrom = "delivered_from"

	kindDeposited       = "deposited"
	kindDepositRefused  = "deposit_refused"
	kindWithdrawn       = "withdrawn"
	kindPledged         = "pledged"
	kindPledgeReleased  = "pledge_released"
	kindSplit           = "split"
	kindMerged          = "merged"
	kindCancelRequested = "cancellation_requested"
	kindLoadedOut       = "loaded_out"
	kindInspection      = "inspection_reported"
	kindTransferred     = "transferred"
	kindDeliveredPart   = "delivered_part"
)

var creationKinds = map[string]bool{kindIssued: true, kindSplitFrom: true, kindMergedFrom: true, kindDeliveredFrom: true}

// chainState is the receipt as it stands after an event. Pieces are committed
// by count and digest; the creating event's detail lists them in full.
type chainState struct {
	Warehouse             string       `json:"warehouse"`
	Commodity             string       `json:"commodity"`
	Grade                 string       `json:"grade"`
	Brand                 string       `json:"brand"`
	Origin                string       `json:"origin"`
	ProductionDate        string       `json:"production_date"`
	CustomsStatus         string       `json:"customs_status"`
	NetWeight             string       `json:"net_weight"`
	Pieces                int          `json:"pieces"`
	PiecesDigest          string       `json:"pieces_digest"`
	InspectionCertificate string       `json:"inspection_certificate"`
	StoragePaidThrough    string       `json:"storage_paid_through"`
	ExpiryDate            string       `json:"expiry_date"`
	Holder                string       `json:"holder"`
	Encumbrance           string       `json:"encumbrance"`
	Pledge                *chainPledge `json:"pledge,omitempty"`
	Status                string       `json:"status"`
	IssuedAt              string       `json:"issued_at"`
}

type chainPledge struct {
	Bank          string `json:"bank"`
	LoanReference string `json:"loan_reference"`
	Currency      string `json:"currency"`
	Amount        string `json:"amount"`
}

type chainPayload struct {
	V       int             `json:"v"`
	Index   int64           `json:"index"`
	Receipt string          `json:"receipt"`
	Kind    string          `json:"kind"`
	At      string          `json:"at"`
	Actor   string          `json:"actor"`
	State   chainState      `json:"state"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

func formatTime(nanos int64) string { return time.Unix(0, nanos).UTC().Format(time.RFC3339Nano) }

func (r *receipt) chainState() chainState {
	s := chainState{Warehouse: r.Warehouse, Commodity: r.Commodity, Grade: r.Grade, Brand: r.Brand, Origin: r.Origin,
		ProductionDate: r.ProductionDate, CustomsStatus: customsName(r.Customs), NetWeight: formatWeight(r.Weight, r.Scale),
		Pieces: len(r.Pieces), PiecesDigest: r.piecesDigest(), InspectionCertificate: r.Inspection,
		StoragePaidThrough: r.StoragePaidThrough, ExpiryDate: r.Expiry, Holder: r.Holder, Encumbrance: encName(r.Enc),
		Status: statusName(r.Status), IssuedAt: formatTime(r.IssuedAt)}
	if r.Enc == receiptsv1.Encumbrance_ENCUMBRANCE_PLEDGED {
		s.Pledge = &chainPledge{Bank: r.PledgeBank, LoanReference: r.PledgeLoan, Currency: r.PledgeCurrency, Amount: r.PledgeAmount}
	}
	return s
}

// stateOfProto is chainState for a receipt as the API shows it; EXPIRED is
// derived from the date and stored (and chained) as LIVE.
func stateOfProto(r *receiptsv1.Receipt) (chainState, error) {
	if r.IssuedAt == nil {
		return chainState{}, errors.New("receipt has no issued_at")
	}
	status := r.Status
	if status == receiptsv1.ReceiptStatus_RECEIPT_STATUS_EXPIRED {
		status = receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE
	}
	ns, ws := make([]string, len(r.Pieces)), make([]string, len(r.Pieces))
	for i, p := range r.Pieces {
		ns[i], ws[i] = p.Number, p.NetWeight
	}
	s := chainState{Warehouse: r.Warehouse, Commodity: r.Commodity, Grade: r.Grade, Brand: r.Brand, Origin: r.Origin,
		ProductionDate: r.ProductionDate, CustomsStatus: customsName(r.CustomsStatus), NetWeight: r.NetWeight,
		Pieces: len(r.Pieces), PiecesDigest: piecesDigest(ns, ws), InspectionCertificate: r.InspectionCertificate,
		StoragePaidThrough: r.StoragePaidThrough, ExpiryDate: r.ExpiryDate, Holder: r.HolderParticipantId,
		Encumbrance: encName(r.Encumbrance), Status: statusName(status), IssuedAt: formatTime(r.IssuedAt.AsTime().UnixNano())}
	if r.Pledge != nil {
		s.Pledge = &chainPledge{Bank: r.Pledge.BankParticipantId, LoanReference: r.Pledge.LoanReference}
		if r.Pledge.Amount != nil {
			s.Pledge.Currency, s.Pledge.Amount = r.Pledge.Amount.Currency, r.Pledge.Amount.Amount
		}
	}
	return s, nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// payloadDigest is the digest of a full payload, or the one a redacted entry
// carries.
func payloadDigest(payload string) (string, error) {
	if d, ok := strings.CutPrefix(payload, redactedPrefix); ok {
		if len(d) != 64 {
			return "", fmt.Errorf("malformed redacted payload %q", payload)
		}
		if _, err := hex.DecodeString(d); err != nil {
			return "", fmt.Errorf("malformed redacted payload %q", payload)
		}
		return d, nil
	}
	return sha256Hex([]byte(payload)), nil
}

func chainHash(previous, receiptNumber, digest string) string {
	return sha256Hex([]byte(previous + "\n" + receiptNumber + "\n" + digest))
}

// VerifyProof checks a VerifyReceipt response offline against a root the
// verifier trusts (obtained independently: GetRegistryRoot from the registry,
// or a root it publishes). trustedRoot is the root hash, optionally prefixed
// with its index ("1234:ab12..."). It checks that:
//   - every chain entry's hash recomputes from its predecessor's hash, its
//     receipt number and its payload (digest), with gapless indexes, ending at
//     the trusted root;
//   - the receipt's events are exactly the chain entries of that receipt
//     number (none altered, reordered, added or left out), the first of them
//     creates the receipt, and each payload agrees with its event's fields;
//   - the receipt as shown is the state its last event committed to.
func VerifyProof(resp *receiptsv1.VerifyReceiptResponse, trustedRoot string) error {
	if resp == nil || resp.Receipt == nil || resp.Root == nil {
		return errors.New("proof has no receipt or no root")
	}
	number := resp.Receipt.ReceiptNumber
	wantIndex := int64(-1)
	rootHash := strings.ToLower(strings.TrimSpace(trustedRoot))
	if i, h, ok := strings.Cut(rootHash, ":"); ok {
		n, err := strconv.ParseInt(i, 10, 64)
		if err != nil {
			return fmt.Errorf("trusted root %q: want HASH or INDEX:HASH", trustedRoot)
		}
		wantIndex, rootHash = n, h
	}
	if len(rootHash) != 64 {
		return fmt.Errorf("trusted root %q: want a 64-digit hex SHA-256", trustedRoot)
	}
	if resp.Root.Hash != rootHash || (wantIndex >= 0 && resp.Root.Index != wantIndex) {
		return fmt.Errorf("proof is against root %d:%s, not the trusted root %s", resp.Root.Index, resp.Root.Hash, trustedRoot)
	}
	chain := resp.Chain
	if len(chain) == 0 || len(resp.Events) == 0 {
		return errors.New("proof has no chain or no events")
	}
	// The chain segment: gapless, linked, each hash recomputed.
	for k, e := range chain {
		if k > 0 {
			if e.Index != chain[k-1].Index+1 {
				return fmt.Errorf("chain index %d follows %d: an event is missing or out of order", e.Index, chain[k-1].Index)
			}
			if e.PreviousHash != chain[k-1].Hash {
				return fmt.Errorf("chain event %d does not link to event %d", e.Index, chain[k-1].Index)
			}
		} else if e.Index == 1 && e.PreviousHash != genesisHash {
			return errors.New("chain event 1 does not start from the genesis hash")
		}
		d, err := payloadDigest(e.Payload)
		if err != nil {
			return fmt.Errorf("chain event %d: %w", e.Index, err)
		}
		if got := chainHash(e.PreviousHash, e.ReceiptNumber, d); got != e.Hash {
			return fmt.Errorf("chain event %d: hash does not match its content (recomputed %s, stored %s)", e.Index, got, e.Hash)
		}
	}
	last := chain[len(chain)-1]
	if last.Index != resp.Root.Index || last.Hash != resp.Root.Hash {
		return fmt.Errorf("chain ends at %d:%s, not at the root %d:%s", last.Index, last.Hash, resp.Root.Index, resp.Root.Hash)
	}
	// The receipt's events: exactly its entries in the segment, which starts
	// with its creation.
	first := chain[0].Index
	var mine []int64
	for _, e := range chain {
		if e.ReceiptNumber == number {
			mine = append(mine, e.Index)
		}
	}
	if len(mine) != len(resp.Events) {
		return fmt.Errorf("the chain has %d events of receipt %s, the proof shows %d", len(mine), number, len(resp.Events))
	}
	var state json.RawMessage
	for k, e := range resp.Events {
		if e.Index != mine[k] {
			return fmt.Errorf("event %d of receipt %s is not its chain entry %d", e.Index, number, mine[k])
		}
		c := chain[e.Index-first]
		if e.ReceiptNumber != number || e.Hash != c.Hash || e.PreviousHash != c.PreviousHash {
			return fmt.Errorf("event %d differs from its chain entry", e.Index)
		}
		if strings.HasPrefix(e.Payload, redactedPrefix) {
			return fmt.Errorf("event %d of the receipt is redacted", e.Index)
		}
		if got := chainHash(e.PreviousHash, e.ReceiptNumber, sha256Hex([]byte(e.Payload))); got != e.Hash {
			return fmt.Errorf("event %d: hash does not match its payload", e.Index)
		}
		var p chainPayload
		dec := json.NewDecoder(strings.NewReader(e.Payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("event %d: payload: %w", e.Index, err)
		}
		if p.Index != e.Index || p.Receipt != number || p.Kind != e.Kind {
			return fmt.Errorf("event %d: payload says index %d receipt %s kind %s", e.Index, p.Index, p.Receipt, p.Kind)
		}
		if e.At == nil || formatTime(e.At.AsTime().UnixNano()) != p.At {
			return fmt.Errorf("event %d: time differs from its payload's %s", e.Index, p.At)
		}
		if k == 0 && (e.Index != first || !creationKinds[p.Kind]) {
			return fmt.Errorf("the proof does not start with the receipt's creation (event %d is %q)", e.Index, p.Kind)
		}
		if k > 0 && creationKinds[p.Kind] {
			return fmt.Errorf("event %d creates receipt %s a second time", e.Index, number)
		}
		state, _ = json.Marshal(p.State)
	}
	shown, err := stateOfProto(resp.Receipt)
	if err != nil {
		return err
	}
	if b, _ := json.Marshal(shown); !bytes.Equal(b, state) {
		return fmt.Errorf("the receipt as shown is not the state its last event committed to:\n shown    %s\n committed %s", b, state)
	}
	if lastEvent := resp.Events[len(resp.Events)-1]; resp.Receipt.HeadHash != lastEvent.Hash {
		return fmt.Errorf("receipt head hash %s is not its last event's hash %s", resp.Receipt.HeadHash, lastEvent.Hash)
	}
	return nil
}

// VerifyMain is `bcx receipts verify FILE --root HASH`: it reads a
// VerifyReceiptResponse as protojson from FILE ("-" for stdin), checks it with
// VerifyProof and prints what it proved.
func VerifyMain(args []string, stdin io.Reader, stdout io.Writer) error {
	const usage = "usage: bcx receipts verify FILE --root HASH   (FILE holds a VerifyReceiptResponse as JSON; - reads stdin)"
	var file, root string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--root" || a == "-root":
			if i+1 >= len(args) {
				return errors.New(usage)
			}
			root = args[i+1]
			i++
		case strings.HasPrefix(a, "--root="), strings.HasPrefix(a, "-root="):
			_, root, _ = strings.Cut(a, "=")
		case a == "-h" || a == "--help":
			_, err := fmt.Fprintln(stdout, usage)
			return err
		case strings.HasPrefix(a, "-") && a != "-":
			return fmt.Errorf("unknown flag %s\n%s", a, usage)
		case file == "":
			file = a
		default:
			return fmt.Errorf("unexpected argument %q\n%s", a, usage)
		}
	}
	if file == "" || root == "" {
		return errors.New(usage)
	}
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	var resp receiptsv1.VerifyReceiptResponse
	if err := protojson.Unmarshal(b, &resp); err != nil {
		return fmt.Errorf("%s: not a VerifyReceiptResponse: %w", file, err)
	}
	if err := VerifyProof(&resp, root); err != nil {
		return fmt.Errorf("verification FAILED: %w", err)
	}
	r := resp.Receipt
	_, err = fmt.Fprintf(stdout, "OK: receipt %s (%s t %s %s in %s, holder %s, %s, %s): %d events verified against root %d:%s\n",
		r.ReceiptNumber, r.NetWeight, r.Commodity, r.Grade, r.Warehouse, r.HolderParticipantId,
		statusName(r.Status), encName(r.Encumbrance), len(resp.Events), resp.Root.Index, resp.Root.Hash)
	return err
}
