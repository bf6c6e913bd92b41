// Swift cannot call C variadic functions, and curl's setopt/getinfo are variadic. These wrappers fix one
// argument type each; they are the only C in fleet.
#ifndef FLEET_CCURL_SHIM_H
#define FLEET_CCURL_SHIM_H

#include <curl/curl.h>
// Linux's epoll and eventfd, which the curl loop watches curl's sockets with: Swift's Glibc module does not
// export these headers.
#include <sys/epoll.h>
#include <sys/eventfd.h>

typedef size_t (*fleet_curl_data_callback)(char *data, size_t size, size_t count, void *context);

static inline CURLcode fleet_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode fleet_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode fleet_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode fleet_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode fleet_easy_setopt_callback(CURL *handle, CURLoption option, fleet_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode fleet_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLMcode fleet_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

typedef int (*fleet_curl_socket_callback)(CURL *easy, curl_socket_t socket, int what, void *context, void *socketContext);
typedef int (*fleet_curl_timer_callback)(CURLM *multi, long timeoutMilliseconds, void *context);

static inline CURLMcode fleet_multi_setopt_pointer(CURLM *multi, CURLMoption option, void *value) {
    return curl_multi_setopt(multi, option, value);
}

static inline CURLMcode fleet_multi_setopt_socketfunction(CURLM *multi, fleet_curl_socket_callback value) {
    return curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, value);
}

static inline CURLMcode fleet_multi_setopt_timerfunction(CURLM *multi, fleet_curl_timer_callback value) {
    return curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, value);
}

typedef int (*fleet_curl_sockopt_callback)(void *context, curl_socket_t socket, curlsocktype purpose);

static inline CURLcode fleet_easy_setopt_sockopt(CURL *handle, fleet_curl_sockopt_callback value) {
    return curl_easy_setopt(handle, CURLOPT_SOCKOPTFUNCTION, value);
}

/// What a write callback returns to pause its transfer (curl keeps the bytes and offers them again on resume).
static inline size_t fleet_writefunc_pause(void) {
    return CURL_WRITEFUNC_PAUSE;
}

static inline CURLcode fleet_easy_unpause(CURL *handle) {
    return curl_easy_pause(handle, CURLPAUSE_CONT);
}

#endif
