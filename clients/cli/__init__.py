"""The `atrium` command line: a person's (or a script's) way to the public API, signed in
once with `atrium login`. Every command speaks to the gateway through
`clients.gateway`, prints what a person reads (Rich tables, trees and charts), or with
`--json` the API's own JSON and nothing else; a refused request prints the problem's
`detail` on stderr and exits 1."""
