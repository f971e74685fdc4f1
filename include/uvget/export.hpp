// UVGET_EXPORT marks what the library exports: the public API and nothing else (the library is
// built with -fvisibility=hidden, so internal symbols stay out of libuvget.so's symbol table).
#pragma once

#define UVGET_EXPORT __attribute__((visibility("default")))
