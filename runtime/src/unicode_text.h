// Forwards to the public header (the trainer reads JSONL and checks UTF-8 too).
#pragma once
#include "gsa/runtime/unicode_text.h"
