/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Go programs
 * under Wine 8, which lacks it: the Go runtime (1.22 and later) takes its
 * random bytes from ProcessPrng there. This fills the buffer from
 * RtlGenRandom (SystemFunction036 in advapi32). For tests only.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
	(void)inst;
	(void)reason;
	(void)reserved;
	return TRUE;
}
