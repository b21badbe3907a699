// Translation unit that owns the shared precompiled header (see OhemDevelopment.cmake).
