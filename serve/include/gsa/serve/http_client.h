// The client side of the serving API, for `gsa generate --server URL`: one streamed completion over HTTP/1.1
// (Boost.Beast, blocking).
//
// Contract: stream_completion POSTs render_completion_call(call) (stream forced on) to URL/v1/completions, with
// "Authorization: Bearer KEY" when api_key is not empty, and calls on_text with each text delta as its
// server-sent event arrives; returns the finish reason ("stop" | "length"). URL is http://HOST[:PORT][/PREFIX]
// (no https). Throws gsa::Error naming the URL on a connection failure, and with the server's status and error
// message on an error answer or an error event.
#pragma once

#include <functional>
#include <string>

#include "gsa/serve/api_types.h"

namespace gsa::serve {

std::string stream_completion(const std::string& url, CompletionCall call, const std::string& api_key,
                              const std::function<void(const std::string&)>& on_text);

}  // namespace gsa::serve
