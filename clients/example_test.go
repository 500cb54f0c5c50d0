package clients_test

import (
	"context"
	"fmt"
	"log"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nova-auth/nova-auth/clients"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// A service builds one pool from its environment and asks the auth service
// about a user. In the cluster no variable is needed; here TestMain has set
// GRPC_CLIENT_AUTH_TARGET to a local auth-service.
func Example() {
	pool, err := clients.FromEnv()
	if err != nil {
		log.Fatal(err) // names every bad variable
	}
	defer pool.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := pool.Auth().GetUserByEmail(ctx, &authpb.GetUserByEmailRequest{Email: "alice@example.com"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetFound(), resp.GetUser().GetUsername())
	// Output: true alice
}

// Any other generated client takes the pool's connection, with the same
// round-robin, retries and breaker.
func ExamplePool_Conn() {
	pool, err := clients.FromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	health := healthpb.NewHealthClient(pool.Conn("auth"))
	resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: authpb.AuthService_ServiceDesc.ServiceName})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetStatus())
	// Output: SERVING
}
