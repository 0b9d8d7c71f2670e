#pragma once
// libssh2 for Swift. libssh2 declares much of its API as function-like macros, which Swift cannot
// call; each macro the transport needs is wrapped here in a static inline function.
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <string.h>

static inline LIBSSH2_SESSION *ccr_ssh_session_init(void) {
    return libssh2_session_init_ex(NULL, NULL, NULL, NULL);
}

static inline int ccr_ssh_session_disconnect(LIBSSH2_SESSION *s, const char *description) {
    return libssh2_session_disconnect_ex(s, SSH_DISCONNECT_BY_APPLICATION, description, "");
}

static inline int ccr_ssh_userauth_publickey_fromfile(LIBSSH2_SESSION *s, const char *user,
                                                      const char *privkey, const char *passphrase) {
    return libssh2_userauth_publickey_fromfile_ex(s, user, (unsigned int)strlen(user), NULL,
                                                  privkey, passphrase);
}

static inline LIBSSH2_CHANNEL *ccr_ssh_channel_open_session(LIBSSH2_SESSION *s) {
    return libssh2_channel_open_ex(s, "session", sizeof("session") - 1,
                                   LIBSSH2_CHANNEL_WINDOW_DEFAULT, LIBSSH2_CHANNEL_PACKET_DEFAULT,
                                   NULL, 0);
}

static inline int ccr_ssh_channel_exec(LIBSSH2_CHANNEL *c, const char *command) {
    return libssh2_channel_process_startup(c, "exec", sizeof("exec") - 1, command,
                                           (unsigned int)strlen(command));
}

static inline ssize_t ccr_ssh_channel_read(LIBSSH2_CHANNEL *c, char *buf, size_t len) {
    return libssh2_channel_read_ex(c, 0, buf, len);
}

static inline ssize_t ccr_ssh_channel_read_stderr(LIBSSH2_CHANNEL *c, char *buf, size_t len) {
    return libssh2_channel_read_ex(c, SSH_EXTENDED_DATA_STDERR, buf, len);
}

static inline ssize_t ccr_ssh_channel_write(LIBSSH2_CHANNEL *c, const char *buf, size_t len) {
    return libssh2_channel_write_ex(c, 0, buf, len);
}

static inline LIBSSH2_SFTP_HANDLE *ccr_sftp_open(LIBSSH2_SFTP *sftp, const char *path,
                                                 unsigned long flags, long mode) {
    return libssh2_sftp_open_ex(sftp, path, (unsigned int)strlen(path), flags, mode,
                                LIBSSH2_SFTP_OPENFILE);
}

static inline int ccr_sftp_close(LIBSSH2_SFTP_HANDLE *h) { return libssh2_sftp_close_handle(h); }

static inline int ccr_sftp_fsetstat(LIBSSH2_SFTP_HANDLE *h, LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    return libssh2_sftp_fstat_ex(h, attrs, 1);
}

static inline int ccr_sftp_unlink(LIBSSH2_SFTP *sftp, const char *path) {
    return libssh2_sftp_unlink_ex(sftp, path, (unsigned int)strlen(path));
}

static inline int ccr_sftp_stat(LIBSSH2_SFTP *sftp, const char *path, LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    return libssh2_sftp_stat_ex(sftp, path, (unsigned int)strlen(path), LIBSSH2_SFTP_STAT, attrs);
}

/// The numeric values Swift cannot import (macros with casts or shifts).
static inline int ccr_ssh_error_eagain(void) { return LIBSSH2_ERROR_EAGAIN; }
static inline unsigned long ccr_sftp_fxf_read(void) { return LIBSSH2_FXF_READ; }
static inline unsigned long ccr_sftp_fxf_write_create_truncate(void) {
    return LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC;
}
static inline unsigned long ccr_sftp_fxf_write_create_exclusive(void) {
    return LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL;
}
