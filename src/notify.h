/*
 * notify.h: telling a service manager how the service is (systemd's
 * sd_notify protocol, written here in a few lines instead of linking
 * libsystemd): a datagram with "READY=1" or "STOPPING=1" to the socket
 * named by $NOTIFY_SOCKET. Without that variable nothing is sent.
 */
#ifndef CRMD_NOTIFY_H
#define CRMD_NOTIFY_H

/* Sends state (e.g. "READY=1") to $NOTIFY_SOCKET, if set: a path, or an
 * abstract socket name after '@'. Returns 1 when sent, 0 when there is no
 * socket, -1 when it could not be sent (the service goes on). */
int notify_send(const char *state);

#endif
