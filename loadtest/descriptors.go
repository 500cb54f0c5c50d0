package main

import (
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// protoset is the compiled descriptor set of the AuthService and
// grpc.health.v1 APIs, taken from the generated Go code, so ghz needs neither
// the .proto files nor server reflection (staging may turn reflection off).
func protoset() ([]byte, error) {
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imps := fd.Imports()
		for i := 0; i < imps.Len(); i++ {
			add(imps.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(authpb.File_nova_auth_service_auth_service_proto)
	add(grpc_health_v1.File_grpc_health_v1_health_proto)
	return proto.Marshal(set)
}
