// Package oxdclient is a typed client for every command of oxd-server 3.1.x
// (the Gluu oxd mediator), over the socket protocol ([NewSocket]), the
// oxd-https-extension ([NewHTTPS]), or in-process through an engine from
// package oxdserver.
//
// Each command is a method of [Client] that takes a context and a params
// struct whose JSON field names are oxd's wire names, and returns the typed
// answer. An oxd error answer is an [*Error] (errors.As), with predicates
// for the codes callers branch on ([IsNeedInfo], [IsStateNotRegistered],
// [IsProtectionTokenError], …); a failure to reach oxd is a
// [*TransportError] that wraps [ErrUnavailable], [ErrTimeout],
// [ErrProtocol], [ErrTooLarge] or [ErrClosed].
//
// Credentials are [Secret] values: they never print, so errors and logs
// cannot leak them.
package oxdclient
