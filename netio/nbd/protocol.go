package nbd

import "fmt"

// Wire constants of the NBD protocol (doc/proto.md in the NetworkBlockDevice/nbd
// repository). All integers on the wire are big-endian.

// Handshake magics.
const (
	nbdMagic      uint64 = 0x4e42444d41474943 // "NBDMAGIC"
	ihaveoptMagic uint64 = 0x49484156454F5054 // "IHAVEOPT"
	optReplyMagic uint64 = 0x3e889045565a9
)

// Handshake flags (server, 16 bits) and client flags (32 bits).
const (
	flagFixedNewstyle uint16 = 1 << 0
	flagNoZeroes      uint16 = 1 << 1

	clientFlagFixedNewstyle uint32 = 1 << 0
	clientFlagNoZeroes      uint32 = 1 << 1
	clientFlagsKnown               = clientFlagFixedNewstyle | clientFlagNoZeroes
)

// Options.
const (
	optExportName      uint32 = 1
	optAbort           uint32 = 2
	optList            uint32 = 3
	optPeekExport      uint32 = 4
	optStartTLS        uint32 = 5
	optInfo            uint32 = 6
	optGo              uint32 = 7
	optStructuredReply uint32 = 8
	optListMetaContext uint32 = 9
	optSetMetaContext  uint32 = 10
	optExtendedHeaders uint32 = 11
)

// Option reply types. Errors have bit 31 set.
const (
	repAck         uint32 = 1
	repServer      uint32 = 2
	repInfo        uint32 = 3
	repMetaContext uint32 = 4

	repErrUnsup        uint32 = 1<<31 + 1
	repErrPolicy       uint32 = 1<<31 + 2
	repErrInvalid      uint32 = 1<<31 + 3
	repErrPlatform     uint32 = 1<<31 + 4
	repErrTLSReqd      uint32 = 1<<31 + 5
	repErrUnknown      uint32 = 1<<31 + 6
	repErrShutdown     uint32 = 1<<31 + 7
	repErrBlockSizeReq uint32 = 1<<31 + 8
	repErrTooBig       uint32 = 1<<31 + 9
)

// Information types for NBD_OPT_INFO / NBD_OPT_GO.
const (
	infoExport      uint16 = 0
	infoName        uint16 = 1
	infoDescription uint16 = 2
	infoBlockSize   uint16 = 3
)

// Transmission flags (16 bits).
const (
	tflagHasFlags        uint16 = 1 << 0
	tflagReadOnly        uint16 = 1 << 1
	tflagSendFlush       uint16 = 1 << 2
	tflagSendFUA         uint16 = 1 << 3
	tflagRotational      uint16 = 1 << 4
	tflagSendTrim        uint16 = 1 << 5
	tflagSendWriteZeroes uint16 = 1 << 6
	tflagSendDF          uint16 = 1 << 7
	tflagCanMultiConn    uint16 = 1 << 8
)

// Transmission-phase magics and sizes.
const (
	requestMagic     uint32 = 0x25609513
	simpleReplyMagic uint32 = 0x67446698

	requestHeaderLen = 28 // magic 4, flags 2, type 2, cookie 8, offset 8, length 4
	replyHeaderLen   = 16 // magic 4, error 4, cookie 8
)

// Commands.
const (
	cmdRead        uint16 = 0
	cmdWrite       uint16 = 1
	cmdDisc        uint16 = 2
	cmdFlush       uint16 = 3
	cmdTrim        uint16 = 4
	cmdCache       uint16 = 5
	cmdWriteZeroes uint16 = 6
	cmdBlockStatus uint16 = 7
)

// Command flags.
const (
	cmdFlagFUA      uint16 = 1 << 0
	cmdFlagNoHole   uint16 = 1 << 1
	cmdFlagDF       uint16 = 1 << 2
	cmdFlagReqOne   uint16 = 1 << 3
	cmdFlagFastZero uint16 = 1 << 4
)

// Error values of simple replies.
const (
	errnoOK       uint32 = 0
	errnoPERM     uint32 = 1
	errnoIO       uint32 = 5
	errnoNOMEM    uint32 = 12
	errnoINVAL    uint32 = 22
	errnoNOSPC    uint32 = 28
	errnoOVERFLOW uint32 = 75
	errnoNOTSUP   uint32 = 95
	errnoSHUTDOWN uint32 = 108
)

// Limits and advertised block sizes.
const (
	// MaxRequestLen is the largest READ or WRITE length the server accepts
	// (the advertised maximum block size, 32 MiB). TRIM and WRITE_ZEROES carry
	// no payload and may be longer.
	MaxRequestLen = 32 << 20

	// Advertised in NBD_INFO_BLOCK_SIZE.
	minBlockSize       = 1
	preferredBlockSize = 4096

	// maxStringLen bounds export names and descriptions (the protocol's
	// limit for strings).
	maxStringLen = 4096

	// maxOptionLen bounds the data of one option; a longer option ends
	// the connection (a hard disconnect, which the protocol allows against
	// a denial of service) without reading its data.
	maxOptionLen = 16 << 10

	// maxOptions bounds the number of options one connection may send
	// before it reaches the transmission phase.
	maxOptions = 256
)

// errnoName gives the conventional name of an NBD error value, for logs.
func errnoName(e uint32) string {
	switch e {
	case errnoOK:
		return "OK"
	case errnoPERM:
		return "EPERM"
	case errnoIO:
		return "EIO"
	case errnoNOMEM:
		return "ENOMEM"
	case errnoINVAL:
		return "EINVAL"
	case errnoNOSPC:
		return "ENOSPC"
	case errnoOVERFLOW:
		return "EOVERFLOW"
	case errnoNOTSUP:
		return "ENOTSUP"
	case errnoSHUTDOWN:
		return "ESHUTDOWN"
	}
	return fmt.Sprintf("errno(%d)", e)
}

// optName names an option, for logs.
func optName(o uint32) string {
	switch o {
	case optExportName:
		return "EXPORT_NAME"
	case optAbort:
		return "ABORT"
	case optList:
		return "LIST"
	case optPeekExport:
		return "PEEK_EXPORT"
	case optStartTLS:
		return "STARTTLS"
	case optInfo:
		return "INFO"
	case optGo:
		return "GO"
	case optStructuredReply:
		return "STRUCTURED_REPLY"
	case optListMetaContext:
		return "LIST_META_CONTEXT"
	case optSetMetaContext:
		return "SET_META_CONTEXT"
	case optExtendedHeaders:
		return "EXTENDED_HEADERS"
	}
	return fmt.Sprintf("opt(%d)", o)
}

// cmdName names a command, for logs.
func cmdName(c uint16) string {
	switch c {
	case cmdRead:
		return "READ"
	case cmdWrite:
		return "WRITE"
	case cmdDisc:
		return "DISC"
	case cmdFlush:
		return "FLUSH"
	case cmdTrim:
		return "TRIM"
	case cmdCache:
		return "CACHE"
	case cmdWriteZeroes:
		return "WRITE_ZEROES"
	case cmdBlockStatus:
		return "BLOCK_STATUS"
	}
	return fmt.Sprintf("cmd(%d)", c)
}
