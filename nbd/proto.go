package nbd

// Protocol constants, named and grouped as in the NBD protocol document
// (doc/proto.md of the NetworkBlockDevice/nbd project), by section.

// "Handshake" / "Newstyle negotiation".
const (
	magicNBD      = 0x4e42444d41474943 // "NBDMAGIC"
	magicIHaveOpt = 0x49484156454f5054 // "IHAVEOPT"
	magicOptReply = 0x0003e889045565a9

	flagFixedNewstyle = 1 << 0 // NBD_FLAG_FIXED_NEWSTYLE (handshake flags)
	flagNoZeroes      = 1 << 1 // NBD_FLAG_NO_ZEROES

	clientFlagFixedNewstyle = 1 << 0 // NBD_FLAG_C_FIXED_NEWSTYLE (client flags)
	clientFlagNoZeroes      = 1 << 1 // NBD_FLAG_C_NO_ZEROES
)

// "Transmission flags".
const (
	tflagHasFlags     = 1 << 0 // NBD_FLAG_HAS_FLAGS
	tflagReadOnly     = 1 << 1 // NBD_FLAG_READ_ONLY
	tflagSendFlush    = 1 << 2 // NBD_FLAG_SEND_FLUSH
	tflagSendCache    = 1 << 10
	tflagCanMultiConn = 1 << 8 // NBD_FLAG_CAN_MULTI_CONN
)

// "Option types".
const (
	optExportName       = 1
	optAbort            = 2
	optList             = 3
	optStartTLS         = 5
	optInfo             = 6
	optGo               = 7
	optStructuredReply  = 8
	optListMetaContext  = 9
	optSetMetaContext   = 10
	optExtendedHeaders  = 11
	maxOptionLen        = 64 << 10 // larger option data closes the connection
	maxOptionsPerClient = 256      // haggling is bounded too
)

// "Option reply types".
const (
	repAck         = 1
	repServer      = 2
	repInfo        = 3
	repMetaContext = 4

	repFlagError   = 1 << 31
	repErrUnsup    = repFlagError | 1
	repErrPolicy   = repFlagError | 2
	repErrInvalid  = repFlagError | 3
	repErrUnknown  = repFlagError | 6
	repErrTooBig   = repFlagError | 9
	repErrPlatform = repFlagError | 4
)

// NBD_OPT_INFO and NBD_OPT_GO information types ("Option types").
const (
	infoExport      = 0
	infoName        = 1
	infoDescription = 2
	infoBlockSize   = 3
)

// "Request message" and "Simple reply message" / "Structured reply chunk
// message".
const (
	magicRequest         = 0x25609513
	magicSimpleReply     = 0x67446698
	magicStructuredReply = 0x668e33ef
	requestLen           = 28

	replyFlagDone = 1 << 0 // NBD_REPLY_FLAG_DONE

	replyTypeNone        = 0
	replyTypeOffsetData  = 1
	replyTypeBlockStatus = 5
	replyTypeError       = 1<<15 | 1
)

// "Request types".
const (
	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdTrim        = 4
	cmdCache       = 5
	cmdWriteZeroes = 6
	cmdBlockStatus = 7
	cmdResize      = 8

	cmdFlagReqOne = 1 << 3 // NBD_CMD_FLAG_REQ_ONE
)

// "Error values".
const (
	errPerm     = 1
	errIO       = 5
	errInval    = 22
	errNotSup   = 95
	errShutdown = 108
)

// "`base:allocation` metadata context".
const (
	metaBaseAllocation = "base:allocation"
	stateHole          = 1 << 0 // NBD_STATE_HOLE
	stateZero          = 1 << 1 // NBD_STATE_ZERO
	baseAllocationID   = 1      // the context id this server hands out
)
