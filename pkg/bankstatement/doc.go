// Package bankstatement parses the account statements clearing banks send the
// exchange — ISO 20022 camt.053 (bank-to-customer statement) and camt.054
// (debit/credit notification), message versions 001.02 to 001.08, and SWIFT
// MT940 — into one model, and checks that each statement adds up.
//
// The settlement service reconciles these statements against the ledger of
// record, so the parser is deliberately strict where a lenient reading could
// move money: amounts are exact decimals (never floats) with the ISO 20022
// limits enforced, debit/credit indicators are mandatory, malformed or
// out-of-order fields are errors with a reason and a position, and a
// statement whose opening balance plus its entries does not reach its closing
// balance is reported as inconsistent (with the difference) rather than
// trusted. Whether an inconsistent statement may be imported is the caller's
// decision; this package only reports it.
//
// Untrusted input is bounded: files larger than [DefaultMaxBytes] (see
// [Options]) are refused before parsing, XML documents that contain a DOCTYPE,
// DTD or entity declaration are refused outright (XML bombs, external
// entities), element nesting is limited, and no input makes the parser panic
// (FuzzParse checks this).
//
// [Main] implements the `bcx statement` subcommands (currently `inspect`), and
// [GenerateCamt053] writes large consistent statements for benchmarks.
package bankstatement
