# mk/floats.mk -- make check-floats: all 2^32 float32 bit patterns through the
# response formatter (api/f2s.c) against double-conversion (minutes); not part
# of make test.

.PHONY: check-floats
$(B)/check_floats: tests/floats/check_floats.c $(B)/obj/api/f2s.o \
		$(B)/obj/api/numtext_ref.o
	$(CC) $(CFLAGS) $^ -ldouble-conversion -lstdc++ -lm -o $@
check-floats: $(B)/check_floats
	./$(B)/check_floats
